/**
 * Types for the language-routing rules. Two layers:
 *  - `*Spec` types describe the file as an operator writes it (snake_case keys, YAML or JSON);
 *  - `Rule`, `DefaultRoute` and `RuleSet` are the validated, compiled form (regexes and CIDRs built once at load)
 *    that `matchRoute` consumes. Nothing outside `load.ts` should ever see an unvalidated spec.
 */
import type { BlockList } from 'node:net';

export const MODES = ['bidirectional_translation', 'assistive_translation', 'bypass'] as const;
export type Mode = (typeof MODES)[number];

/**
 * Which way a call goes, seen from the gateway: `outbound` is a call from the PBX toward Telnyx (every SIP call),
 * `inbound` a call arriving from Telnyx (the TeXML Voice URL).
 */
export const DIRECTIONS = ['inbound', 'outbound'] as const;
export type Direction = (typeof DIRECTIONS)[number];

/** A string matcher in the file: a literal (prefix for numbers, exact value for headers) or `{ regex }`. */
export type StringMatchSpec = string | { regex: string };

export interface HeaderMatchSpec {
  /** Header name; compared case-insensitively (SIP header names are case-insensitive). */
  name: string;
  /** Exact value (surrounding whitespace ignored) or `{ regex }`; absent means "header is present". */
  value?: StringMatchSpec;
}

export interface RuleMatchSpec {
  /** E.164-style prefix such as `+49`, or `{ regex }`; applied to the number with visual separators removed. */
  called?: StringMatchSpec;
  calling?: StringMatchSpec;
  /** CIDR (or bare address) or a list of them, IPv4 and/or IPv6, matched against the PBX source IP. */
  source?: string | string[];
  /** Name of a trunk from the file's `trunks` section (the first trunk whose conditions hold names the call's). */
  trunk?: string;
  header?: HeaderMatchSpec;
  direction?: Direction;
}

/** A named trunk: every condition given must hold, and at least one must be given. */
export interface TrunkSpec {
  name: string;
  /** CIDR (or bare address) or a list of them: the PBX's source IP. */
  source?: string | string[];
  /** RFC 4904 trunk-group label (`tgrp` on the Request-URI, Contact or From; the older `otg` on From). */
  tgrp?: StringMatchSpec;
  header?: HeaderMatchSpec;
}

export interface GreetingSpec {
  text: string;
  language: string;
}

export interface RuleSpec {
  name: string;
  /** Every condition given must hold; `{}` matches every call. */
  match: RuleMatchSpec;
  mode: Mode;
  source_language?: string;
  target_language?: string;
  /** Header (e.g. `X-Kallglot-Languages`) whose value `de-en` / `de:en` supplies the languages at match time. */
  languages_from_header?: string;
  /** Prefix such as `*49*` the agent dials before the number; the rule matches only such calls, and it is stripped. */
  dial_code?: string;
  metadata?: Record<string, string>;
  recording?: boolean;
  greeting?: GreetingSpec;
  /** A Telnyx trunk of the gateway config (`telnyx.trunks`, or `default`) this rule's calls go out on. */
  trunk_out?: string;
}

export interface DefaultSpec {
  mode: Mode;
  source_language?: string;
  target_language?: string;
  metadata?: Record<string, string>;
  recording?: boolean;
  greeting?: GreetingSpec;
  trunk_out?: string;
}

export interface RulesFileSpec {
  trunks?: TrunkSpec[];
  rules?: RuleSpec[];
  default: DefaultSpec;
}

/* ---------- compiled form ---------- */

export type NumberMatcher =
  | { readonly kind: 'prefix'; readonly prefix: string }
  | { readonly kind: 'regex'; readonly regex: RegExp };

export type ValueMatcher =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'regex'; readonly regex: RegExp };

export interface CidrSet {
  /** Normalised `address/prefix` strings, for logs and diagnostics. */
  readonly cidrs: readonly string[];
  readonly list: BlockList;
}

export interface CompiledMatch {
  readonly called?: NumberMatcher;
  readonly calling?: NumberMatcher;
  readonly source?: CidrSet;
  readonly trunk?: string;
  readonly header?: HeaderCondition;
  readonly direction?: Direction;
}

export interface HeaderCondition {
  /** Lower-cased. */
  readonly name: string;
  /** Absent: the header only has to be present. */
  readonly value?: ValueMatcher;
}

export interface Trunk {
  readonly name: string;
  /** Position in the file's `trunks` list (0-based) and line, for diagnostics. */
  readonly index: number;
  readonly line?: number;
  readonly source?: CidrSet;
  readonly tgrp?: ValueMatcher;
  readonly header?: HeaderCondition;
}

export interface Greeting {
  readonly text: string;
  readonly language: string;
}

export interface Rule {
  readonly name: string;
  /** Position in the file's `rules` list (0-based) and line of the rule, for diagnostics. */
  readonly index: number;
  readonly line?: number;
  readonly match: CompiledMatch;
  readonly mode: Mode;
  readonly sourceLanguage?: string;
  readonly targetLanguage?: string;
  /** Lower-cased header name when the languages come from a header at match time. */
  readonly languagesFromHeader?: string;
  /** Dialled-number prefix (digits, `*`, `#`) this rule requires; stripped from the number before matching. */
  readonly dialCode?: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly recording: boolean;
  readonly greeting?: Greeting;
  /** The Telnyx trunk (gateway config) the call goes out on; absent: `default`. Not a PBX-side `trunks` name. */
  readonly trunkOut?: string;
}

export interface DefaultRoute {
  readonly mode: Mode;
  readonly sourceLanguage?: string;
  readonly targetLanguage?: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly recording: boolean;
  readonly greeting?: Greeting;
  readonly trunkOut?: string;
}

export interface RuleSet {
  /** The file the rules came from (as given to the loader). */
  readonly file: string;
  /** In file order: the first trunk whose conditions hold names the call's trunk. */
  readonly trunks: readonly Trunk[];
  readonly rules: readonly Rule[];
  readonly default: DefaultRoute;
  /** Keys the loader kept but that cannot do what they say for some calls; the store logs each one. */
  readonly warnings: readonly RulesWarning[];
}

/** A problem that does not refuse the file: same details as a RulesError, and its formatted message. */
export interface RulesWarning {
  readonly message: string;
  readonly reason: string;
  readonly line?: number;
  readonly ruleIndex?: number;
  readonly ruleName?: string;
  readonly key?: string;
}

/* ---------- matcher input / output ---------- */

export interface CallInfo {
  /**
   * Called number: user part of the Request-URI / To (extracting it from the SIP URI is the caller's job). Tel
   * parameters in it (`;tgrp=…;trunk-context=…`, RFC 4904) are not part of the number: the matcher drops them.
   */
  called: string;
  calling: string;
  /** Source IP of the PBX (IPv4, IPv6, IPv4-mapped IPv6 and zone ids are accepted). */
  sourceIp: string;
  direction: Direction;
  /** The trunk the call arrived on, as `identifyTrunk` named it; undefined when no trunk matched. */
  trunk?: string;
  /**
   * Header lookup. It is called with the lower-cased header name and must look names up case-insensitively
   * (SIP header names are case-insensitive). Returns undefined when the header is absent.
   */
  headers: (name: string) => string | undefined;
}

/** The modes that create a Kallglot session (every mode but `bypass`). */
export type TranslationMode = Exclude<Mode, 'bypass'>;

interface DecisionBase {
  /** Name of the matching rule, or 'default' when no rule matched. */
  ruleName: string;
  /**
   * The called number the rest of the call uses (URI templates' `{called}`, session metadata, the registry): the
   * dialled number without its dial code and without tel parameters. matchRoute always sets it; decisions made
   * elsewhere (Call Control's API calls) have none.
   */
  calledNumber?: string;
  /** The dial code that was stripped from the dialled number, when there was one. */
  dialCode?: string;
  /** The rule's metadata, plus `trunk` when the call's trunk is known. */
  metadata: Record<string, string>;
  recording: boolean;
  greeting?: Greeting;
  /**
   * The Telnyx trunk of the gateway config the call's INVITEs go out on (rule or default `trunk_out`); absent: the
   * trunk named `default`. Unrelated to `CallInfo.trunk`, the PBX-side trunk the call came in on.
   */
  trunkOut?: string;
}

/** A translated call: a session in `mode`, with the languages the rule (or a header) gave. */
export interface TranslatedDecision extends DecisionBase {
  mode: TranslationMode;
  sourceLanguage?: string;
  targetLanguage?: string;
}

/** A call that goes straight through, with no session and no languages. */
export interface BypassDecision extends DecisionBase {
  mode: 'bypass';
}

/** What the rules decided for one call: narrow on `mode` to reach the languages. */
export type RouteDecision = TranslatedDecision | BypassDecision;

/** The name reported for the `default` route; a rule may therefore not be called 'default'. */
export const DEFAULT_RULE_NAME = 'default';
