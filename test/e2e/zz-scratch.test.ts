import { afterEach, it } from 'vitest';
import { startRig, stopRig, inviteUris, received } from './failure-rig.ts';
afterEach(stopRig);
for (const [challenge, verify] of [['407', '0'], ['401', '1'], ['407', '1']]) {
  it(`probe ${challenge} ${verify}`, async () => {
    const rig = await startRig({ TELNYX_SIP_USERNAME: 'gwuser', TELNYX_SIP_PASSWORD: 'pw-123' });
    const uas = await rig.startUas('uas-407-auth-then-200.xml', { keys: { auth_user: 'gwuser', auth_pass: 'pw-123', challenge, verify_digest: verify } });
    const pbx = await rig.runPbx('uac-invite-200-then-bye.xml');
    const t = await uas.done;
    console.log(received(t)[2]?.text, received(t)[1]?.text); console.log(challenge, verify, 'pbx', pbx.exitCode, 'uas', t.exitCode, inviteUris(t), received(t).map((m) => m.startLine), (t.errors ?? '').slice(0, 500));
  }, 60000);
}
