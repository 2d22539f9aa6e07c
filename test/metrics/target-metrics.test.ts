/** The SIP target series: attempts per SBC and result, and the up gauge read from the engine at scrape time. */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/metrics.ts';

describe('SIP target metrics', () => {
  it('counts attempts by target and result, and shows each resolved target as up (1) or skipped (0)', async () => {
    let targets = [
      { target: 'udp:192.0.2.1:5060', up: false },
      { target: 'tls:[2001:db8::1]:5061', up: true },
    ];
    const m = new Metrics({ defaultMetrics: false, sipTargets: () => targets });
    m.targetAttempt('udp:192.0.2.1:5060', 'timeout');
    m.targetAttempt('udp:192.0.2.1:5060', 'timeout');
    m.targetAttempt('tls:[2001:db8::1]:5061', 'answered');
    m.targetAttempt('not a target', 'weird result!');
    const text = await m.render();
    expect(text).toContain(
      'kallglot_gateway_sip_target_attempts_total{target="udp:192.0.2.1:5060",result="timeout"} 2',
    );
    expect(text).toContain(
      'kallglot_gateway_sip_target_attempts_total{target="tls:[2001:db8::1]:5061",result="answered"} 1',
    );
    expect(text).toContain('kallglot_gateway_sip_target_attempts_total{target="other",result="other"} 1');
    expect(text).toContain('kallglot_gateway_sip_target_up{target="udp:192.0.2.1:5060"} 0');
    expect(text).toContain('kallglot_gateway_sip_target_up{target="tls:[2001:db8::1]:5061"} 1');
    // A target DNS no longer names disappears from the gauge.
    targets = [{ target: 'udp:192.0.2.1:5060', up: true }];
    const later = await m.render();
    expect(later).toContain('kallglot_gateway_sip_target_up{target="udp:192.0.2.1:5060"} 1');
    expect(later).not.toContain('kallglot_gateway_sip_target_up{target="tls:');
  });
});
