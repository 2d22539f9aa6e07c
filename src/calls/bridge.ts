/**
 * In-dialog relay between the two legs of a bridged call: re-INVITE (hold/resume, codec change), UPDATE, INFO (DTMF),
 * OPTIONS, NOTIFY, MESSAGE, REFER go through in both directions with their bodies, and the far side's final answer
 * is returned to the asking side. A B2BUA that answered these itself would break hold and DTMF.
 */
import type { Logger } from '../logger.ts';
import type { Dialog, InDialogRequest } from '../sip/port.ts';
import { SipError } from '../sip/port.ts';
import { passThroughDialogHeaders } from './policy.ts';
import type { HeaderList } from '../sip/port.ts';

/** Methods whose successful answer refreshes an RFC 4028 session timer. */
const REFRESHES = new Set(['INVITE', 'UPDATE']);

/** Called with the 2xx headers of every relayed refresh (re-INVITE/UPDATE). */
type RefreshListener = (answerHeaders: HeaderList) => void;

function relay(from: Dialog, to: Dialog, log: Logger, direction: string, onRefresh?: RefreshListener): void {
  from.onRequest((req) => relayRequest(req, to, log, direction, onRefresh));
}

/** Send one in-dialog request on to the other leg and answer it with the other leg's final response. */
function relayRequest(
  req: InDialogRequest,
  to: Dialog,
  log: Logger,
  direction: string,
  onRefresh?: RefreshListener,
): void {
  log.info({ method: req.method, direction }, 'relaying in-dialog request');
  to.request(req.method, {
    body: req.body,
    contentType: req.contentType,
    headers: passThroughDialogHeaders(req.headers()),
  })
    .then((res) => {
      if (res.status >= 200 && res.status < 300 && REFRESHES.has(req.method)) onRefresh?.(res.headers());
      req.respond(res.status, {
        reason: res.reason,
        body: res.body,
        contentType: res.contentType,
        headers: passThroughDialogHeaders(res.headers()),
      });
    })
    .catch((err: unknown) => {
      const status = err instanceof SipError ? err.status : 500;
      log.warn({ err, method: req.method, direction }, 'in-dialog relay failed');
      req.respond(status);
    });
}

/**
 * Requests from Telnyx that arrive after its 200 but before the PBX has ACKed ours: there is no PBX dialog to relay
 * them to yet, so they wait (answering them ourselves would break a re-INVITE). `flush` relays them once the PBX
 * dialog exists; `reject` answers them when the call never got bridged.
 */
export function holdEarlyRequests(telnyx: Dialog): {
  flush(pbx: Dialog, log: Logger, onRefresh?: RefreshListener): void;
  reject(): void;
} {
  const held: InDialogRequest[] = [];
  telnyx.onRequest((req) => held.push(req));
  return {
    flush: (pbx, log, onRefresh) => {
      for (const req of held.splice(0)) relayRequest(req, pbx, log, 'telnyx->pbx', onRefresh);
    },
    reject: () => {
      for (const req of held.splice(0)) req.respond(481);
    },
  };
}

export function bridgeInDialogRequests(pbx: Dialog, telnyx: Dialog, log: Logger, onRefresh?: RefreshListener): void {
  relay(pbx, telnyx, log, 'pbx->telnyx', onRefresh);
  relay(telnyx, pbx, log, 'telnyx->pbx', onRefresh);
}
