/**
 * In-dialog relay between the two legs of a bridged call: re-INVITE (hold/resume, codec change), UPDATE, INFO (DTMF),
 * OPTIONS, NOTIFY, MESSAGE, REFER go through in both directions with their bodies, and the far side's final answer
 * is returned to the asking side. A B2BUA that answered these itself would break hold and DTMF.
 *
 * A re-INVITE without SDP (RFC 3264 §2: the offer comes in the 2xx, the answer in the ACK) goes on without SDP and
 * with the far side's ACK held back: the asking side's ACK carries the answer, which is then sent in the far ACK.
 * Without an answer the media would be undefined, so the call is hung up (onNoAnswer) rather than left silent.
 */
import type { LineLogger } from '../logger.ts';
import type { Dialog, DialogResponse, HeaderList, InDialogRequest } from '../sip/port.ts';
import { SipError } from '../sip/port.ts';
import { passThroughDialogHeaders } from './policy.ts';

/** Methods whose successful answer refreshes an RFC 4028 session timer. */
const REFRESHES = new Set(['INVITE', 'UPDATE']);

export interface RelayContext {
  log: LineLogger;
  /**
   * REFER (a transfer, RFC 3515) from either side: `relay` passes it on with Refer-To/Referred-By, and the NOTIFYs
   * reporting its progress come back the same way; the far side then ends its dialog with BYE, which ends the call
   * (and its Kallglot session) once. `reject`: 603 Decline, nothing crosses.
   */
  referPolicy?: 'relay' | 'reject';
  /** Called with the 2xx headers of every relayed refresh (re-INVITE/UPDATE). */
  onRefresh?: (answerHeaders: HeaderList) => void;
  /** A re-INVITE without SDP whose ACK brought no answer: the call cannot have media; hang it up. */
  onNoAnswer?: (direction: string) => void;
}

function relay(from: Dialog, to: Dialog, ctx: RelayContext, direction: string): void {
  from.onRequest((req) => relayRequest(req, to, ctx, direction));
}

/** Send one in-dialog request on to the other leg and answer it with the other leg's final response. */
function relayRequest(req: InDialogRequest, to: Dialog, ctx: RelayContext, direction: string): void {
  const { log } = ctx;
  if (req.method === 'REFER' && ctx.referPolicy === 'reject') {
    log.info({ direction, referTo: req.header('Refer-To') }, 'REFER refused (REFER_POLICY=reject)');
    req.respond(603, { reason: 'Decline' });
    return;
  }
  const delayedOffer = req.method === 'INVITE' && req.body.length === 0;
  log.debug({ method: req.method, direction, delayedOffer }, 'relaying in-dialog request'); // refreshes: many a call
  to.request(req.method, {
    body: req.body,
    contentType: req.contentType,
    headers: passThroughDialogHeaders(req.headers()),
    deferAck: delayedOffer,
  })
    .then((res) => {
      const ok = res.status >= 200 && res.status < 300;
      if (ok && REFRESHES.has(req.method)) ctx.onRefresh?.(res.headers());
      req.respond(res.status, {
        reason: res.reason,
        body: res.body,
        contentType: res.contentType,
        headers: passThroughDialogHeaders(res.headers()),
      });
      if (ok && delayedOffer) relayAnswerInAck(req, res, ctx, direction);
    })
    .catch((err: unknown) => {
      const status = err instanceof SipError ? err.status : 500;
      log.warn({ err, method: req.method, direction }, 'in-dialog relay failed');
      req.respond(status);
    });
}

/** The asker's ACK carries the answer to the offer we relayed in the 2xx: send it on in the far side's ACK. */
function relayAnswerInAck(req: InDialogRequest, res: DialogResponse, ctx: RelayContext, direction: string): void {
  void req.awaitAck().then((ack) => {
    res.ack?.(ack ?? {});
    if (ack?.body?.length) return;
    ctx.log.error({ direction }, 're-INVITE without SDP: the ACK carried no answer; the call has no media');
    ctx.onNoAnswer?.(direction);
  });
}

/**
 * Requests from Telnyx that arrive after its 200 but before the PBX has ACKed ours: there is no PBX dialog to relay
 * them to yet, so they wait (answering them ourselves would break a re-INVITE). `flush` relays them once the PBX
 * dialog exists; `reject` answers them when the call never got bridged.
 */
export function holdEarlyRequests(telnyx: Dialog): {
  flush(pbx: Dialog, ctx: RelayContext): void;
  reject(): void;
} {
  const held: InDialogRequest[] = [];
  telnyx.onRequest((req) => held.push(req));
  return {
    flush: (pbx, ctx) => {
      for (const req of held.splice(0)) relayRequest(req, pbx, ctx, 'telnyx->pbx');
    },
    reject: () => {
      for (const req of held.splice(0)) req.respond(481);
    },
  };
}

export function bridgeInDialogRequests(pbx: Dialog, telnyx: Dialog, ctx: RelayContext): void {
  relay(pbx, telnyx, ctx, 'pbx->telnyx');
  relay(telnyx, pbx, ctx, 'telnyx->pbx');
}
