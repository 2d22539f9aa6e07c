/**
 * The state of one INVITE dialog (RFC 3261 §12.1) and the pure rules over it: the dialog key, where an in-dialog
 * request goes (route set, §12.2.1.1), and how a response is seen through the port.
 */
import type { DialogResponse, HeaderList } from '../port.ts';
import { parseNameAddr } from '../syntax/address.ts';
import type { SipEndpoint, SipResponse, SipTransportName } from './message.ts';
import { headerAccess, type Credentials } from './ua-core.ts';

export interface DialogState {
  callId: string;
  localTag: string;
  remoteTag: string;
  /** Our From (UAC) or To (UAS) header value, tag included. */
  localAddress: string;
  /** The peer's header value, tag included. */
  remoteAddress: string;
  localCSeq: number;
  remoteCSeq: number;
  remoteTarget: string;
  routeSet: string[];
  transport: SipTransportName;
  /** Fixed next hop for in-dialog requests (the PBX's source address, or the outbound proxy); else route set/target. */
  nextHop?: SipEndpoint;
  /** The address the dialog was set up with; its family picks our Via/Contact address (ua-core localHost). */
  peer?: string;
  auth?: Credentials;
  remoteBody: Buffer;
  remoteContentType: string | undefined;
  remoteHeaders?: HeaderList;
}

export function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}\u0000${localTag}\u0000${remoteTag}`;
}

export function wrapResponse(res: SipResponse): DialogResponse {
  return {
    status: res.status,
    reason: res.reason,
    body: res.body,
    contentType: res.headers.get('Content-Type'),
    ...headerAccess(res.headers),
  };
}

/**
 * Request-URI and Route headers of an in-dialog request (RFC 3261 §12.2.1.1). With a loose router first (`;lr`,
 * every RFC 3261 proxy) the request goes to the remote target through the route set as it is. With a strict router
 * first (RFC 2543) its URI becomes the Request-URI and the remote target is appended as the last Route.
 */
export function requestTarget(remoteTarget: string, routeSet: string[]): { uri: string; routes: string[] } {
  const first = routeSet[0];
  if (first === undefined) return { uri: remoteTarget, routes: [] };
  let firstUri: { raw: string; loose: boolean };
  try {
    const parsed = parseNameAddr(first);
    firstUri = { raw: parsed.rawUri, loose: 'lr' in parsed.uri.params };
  } catch {
    return { uri: remoteTarget, routes: routeSet }; // unparseable: keep the route set as given
  }
  if (firstUri.loose) return { uri: remoteTarget, routes: routeSet };
  return { uri: firstUri.raw.replace(/\?.*$/, ''), routes: [...routeSet.slice(1), `<${remoteTarget}>`] };
}
