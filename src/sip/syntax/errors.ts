/** Thrown by the header-value parsers (URI, name-addr, Via, CSeq). `parseMessage` never throws; it catches these. */
export class SipParseError extends Error {
  /** Short fixed text naming the fault, safe to use in a reason phrase or a log line. */
  readonly reason: string;

  constructor(reason: string, detail?: string) {
    super(detail === undefined ? reason : `${reason}: ${detail}`);
    this.name = 'SipParseError';
    this.reason = reason;
  }
}
