/**
 * BCP-47-ish language codes: a 2–3 letter language, optional 4-letter script, optional region (2 letters or
 * UN M.49 digits) — enough for `de`, `en`, `pt-BR`, `zh-Hans`, `zh-Hans-CN`, `es-419`. Variants/extensions are
 * deliberately not accepted: the translation backend would not know them and a typo is likelier than a real use.
 */

const LANGUAGE_RE = /^([a-z]{2,3})(?:-([a-z]{4}))?(?:-([a-z]{2}|\d{3}))?$/i;

/** Canonical form (`pt-br` -> `pt-BR`, `ZH-hans` -> `zh-Hans`), or undefined when the code is not acceptable. */
export function canonicalLanguage(code: string): string | undefined {
  const m = LANGUAGE_RE.exec(code.trim());
  if (!m) return undefined;
  const [, lang = '', script, region] = m;
  let out = lang.toLowerCase();
  if (script) out += `-${script[0].toUpperCase()}${script.slice(1).toLowerCase()}`;
  if (region) out += `-${region.toUpperCase()}`;
  return out;
}

/**
 * Parse a language-pair header value: `de:en` or `de-en` (source first). Codes with a script or region need the
 * colon form (`pt-BR:en`) because `pt-BR-en` is ambiguous. Source and target must differ.
 */
export function parseLanguagePair(value: string): { source: string; target: string } | undefined {
  const v = value.trim();
  const parts = v.includes(':') ? v.split(':') : v.split('-');
  if (parts.length !== 2) return undefined;
  const source = canonicalLanguage(parts[0]);
  const target = canonicalLanguage(parts[1]);
  if (!source || !target || source === target) return undefined;
  return { source, target };
}
