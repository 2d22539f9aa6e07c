/**
 * An outbound INVITE that got a 2xx, reduced to what its dialog and any later 2xx need: the Call-ID, our tag and
 * From, the Request-URI, the CSeq and where it went. The INVITE client transaction lingers 32 s in Accepted (RFC 6026
 * §8.4) to hand later 2xx to the UAC: with this as its only handler it no longer keeps the outbound call, the INVITE
 * and its SDP, the 200 and the call logic alive for those 32 s after the call ended.
 */
import type { OutboundInviteOptions } from '../port.ts';
import { getTag, parseNameAddr } from '../syntax/address.ts';
import { parseCSeq } from './cseq.ts';
import { EmbeddedDialog } from './dialog.ts';
import { dialogKey } from './dialog-state.ts';
import type { SipEndpoint, SipRequest, SipResponse, SipTransportName } from './message.ts';
import type { UaContext } from './ua-core.ts';

/** The engine's dialog table, as a UAC reaches it. */
export interface DialogTable {
  addDialog(d: EmbeddedDialog): void;
  removeDialog(d: EmbeddedDialog): void;
  /** The live dialog with this key (dialogKey), if any. */
  findDialog(id: string): EmbeddedDialog | undefined;
  resolveNextHop(uri: string, transport: SipTransportName): Promise<SipEndpoint>;
}

export interface AnsweredInvite {
  ctx: UaContext;
  dialogs: DialogTable;
  callId: string;
  localTag: string;
  /** The INVITE's Request-URI, From header and CSeq number. */
  uri: string;
  from: string;
  cseq: number;
  dest: SipEndpoint;
  auth: OutboundInviteOptions['auth'];
  /** The INVITE went to an outbound proxy: without a Record-Route, in-dialog requests go there too. */
  viaProxy: boolean;
}

export function answeredInvite(
  ctx: UaContext,
  dialogs: DialogTable,
  req: SipRequest,
  dest: SipEndpoint,
  opts: Pick<OutboundInviteOptions, 'auth' | 'proxy'>,
): AnsweredInvite {
  return {
    ctx,
    dialogs,
    callId: req.headers.get('Call-ID') ?? '',
    localTag: getTag(req.headers.get('From') ?? '') ?? '',
    uri: req.uri,
    from: req.headers.get('From') ?? '',
    cseq: parseCSeq(req.headers.get('CSeq') ?? '1 INVITE').seq,
    dest,
    auth: opts.auth,
    viaProxy: opts.proxy !== undefined,
  };
}

/** The dialog a 2xx to the INVITE establishes (RFC 3261 §12.1.2), added to the engine's table. */
export function dialogFor2xx(invite: AnsweredInvite, res: SipResponse): EmbeddedDialog {
  const contact = res.headers.getAll('Contact')[0];
  let remoteTarget = invite.uri;
  if (contact) {
    try {
      remoteTarget = parseNameAddr(contact).rawUri;
    } catch {
      // keep the Request-URI: a 2xx with a broken Contact still gets its ACK and BYE
    }
  }
  const routeSet = res.headers.getAll('Record-Route').reverse();
  const dialogs = invite.dialogs;
  const dialog = new EmbeddedDialog(
    invite.ctx,
    {
      callId: invite.callId,
      localTag: invite.localTag,
      remoteTag: getTag(res.headers.get('To') ?? '') ?? '',
      localAddress: invite.from,
      remoteAddress: res.headers.get('To') ?? '',
      localCSeq: invite.cseq,
      remoteCSeq: 0,
      remoteTarget,
      routeSet,
      transport: invite.dest.transport,
      nextHop: invite.viaProxy && routeSet.length === 0 ? invite.dest : undefined,
      peer: invite.dest.address,
      auth: invite.auth,
      remoteBody: res.body, // its own memory (the parser's ownedBytes), not a view of the datagram
      remoteContentType: res.headers.get('Content-Type'),
      remoteHeaders: res.headers.lines(),
    },
    (uri, transport) => dialogs.resolveNextHop(uri, transport),
    (d) => dialogs.removeDialog(d),
  );
  dialogs.addDialog(dialog);
  return dialog;
}

/** ACK the 2xx (the INVITE transaction must complete) and BYE the dialog nobody wants. */
export function ackAndBye(invite: AnsweredInvite, res: SipResponse, why: string): void {
  const dialog = dialogFor2xx(invite, res);
  invite.ctx.logger.info({ callId: invite.callId, why }, 'unwanted 2xx: ACK and BYE');
  void dialog
    .ackInitial(invite.cseq)
    .catch((err: unknown) => invite.ctx.logger.warn({ err, callId: invite.callId }, 'cannot send ACK'))
    .then(() => dialog.bye({ headers: [['Reason', 'SIP;cause=487;text="Request Terminated"']] }));
}

/**
 * What handles the 2xx that reach the INVITE transaction after its first one, for the rest of its Accepted state:
 * a retransmission for a live dialog gets that dialog's ACK again (§13.2.2.4); any other (a forked answer, or a copy
 * for a dialog already ended or refused) is ACKed and BYEd. It keeps only the AnsweredInvite.
 */
export function late2xxHandler(invite: AnsweredInvite): (res: SipResponse) => void {
  return (res) => {
    const remoteTag = getTag(res.headers.get('To') ?? '') ?? '';
    const live = invite.dialogs.findDialog(dialogKey(invite.callId, invite.localTag, remoteTag));
    if (live) live.handleRetransmitted2xx(res);
    else ackAndBye(invite, res, 'late');
  };
}
