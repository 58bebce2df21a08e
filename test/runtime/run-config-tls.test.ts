import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConfig } from '../../src/cli/run';
import { RunConfigFile, formatListenTarget, loadRunConfig, parseListenTarget, validateRunConfig } from '../../src/runtime';
import { configProblems } from '../helpers/config';
import { makePkiFiles, type PkiFiles } from '../helpers/pki';

/** TLS listeners in the run config: `tls:` listen targets, the `tls` section, the --tls-* flags. */


/** the message of what `f` throws (runConfig throws a CliError carrying the RunConfigError's message) */
function thrown(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return '(nothing thrown)';
}

let pki: PkiFiles;
let dir: string;
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'zm-config-tls-'));
  pki = makePkiFiles(dir);
});
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test('tls listen targets parse like tcp ones, and format back', (t) => {
  t.deepEqual(parseListenTarget('tls:127.0.0.1:6653'), { transport: 'tls', host: '127.0.0.1', port: 6653 });
  t.deepEqual(parseListenTarget('tls:[::1]:6653'), { transport: 'tls', host: '::1', port: 6653 });
  t.deepEqual(parseListenTarget('tls::6653'), { transport: 'tls', port: 6653 }, 'an empty host: every address');
  t.deepEqual(parseListenTarget('tls:switches.example:0'), { transport: 'tls', host: 'switches.example', port: 0 });
  t.deepEqual(parseListenTarget('tcp::6653'), { transport: 'tcp', port: 6653 });
  for (const bad of ['tls:6653', 'tls:', 'tls:1.2.3.4:65536', 'tls:[::1:6653', 'tcp:6653', 'ssl:1.2.3.4:6653']) {
    t.is(parseListenTarget(bad), `'${bad}' is not 'unix:PATH', '[tcp:]HOST:PORT' or 'tls:HOST:PORT'`, bad);
  }
  for (const text of ['tls:127.0.0.1:6653', 'tls:[::1]:6653', 'tls::6653', 'tcp:10.0.0.1:6633', 'tcp::6653', 'unix:/run/zm.sock']) {
    t.is(formatListenTarget(parseListenTarget(text) as Exclude<ReturnType<typeof parseListenTarget>, string>), text);
  }
});

test('a tls section gives the tls: targets its PEM contents as strings; with ca, switches must show a certificate it signed', (t) => {
  const path = writeConfig(
    'tls.yaml',
    `listen: ['tls:127.0.0.1:6653', 'tcp:127.0.0.1:6633', 'tls::6654']\ntls: { key: ${pki.serverKey}, cert: ${pki.serverCert}, ca: ${pki.caCert} }\n`,
  );
  const config = loadRunConfig(path);
  const verified = { key: pki.read(pki.serverKey), cert: pki.read(pki.serverCert), ca: pki.read(pki.caCert), requestCert: true, rejectUnauthorized: true };
  t.deepEqual(config.listen, [
    { transport: 'tls', host: '127.0.0.1', port: 6653, ...verified },
    { transport: 'tcp', host: '127.0.0.1', port: 6633 },
    { transport: 'tls', port: 6654, ...verified },
  ]);
  t.deepEqual(config.tls, { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert }, 'the paths, as given');
  t.true(verified.key.includes('PRIVATE KEY'), 'the contents, not the path');
  // `run --workers N` hands the config to its workers as JSON: nothing may be lost on the way (a Buffer would be)
  t.deepEqual(JSON.parse(JSON.stringify(config)), config);
});

test('without ca, a tls: listener asks switches for no certificate', (t) => {
  const config = validateRunConfig({ listen: ['tls::6653'], tls: { key: pki.serverKey, cert: pki.serverCert } }, 'run.yaml');
  t.deepEqual(config.listen, [
    { transport: 'tls', port: 6653, key: pki.read(pki.serverKey), cert: pki.read(pki.serverCert), requestCert: false, rejectUnauthorized: false },
  ]);
  t.false('ca' in config.listen[0]!);
});

test('a tls: target without key or certificate is refused, naming the target and the flag', (t) => {
  t.deepEqual(configProblems(() => validateRunConfig({ listen: ['tcp::6633', 'tls:127.0.0.1:6653'] }, 'run.yaml')), [
    "tls.key: missing: listen[1] 'tls:127.0.0.1:6653' needs the controller's private key (--tls-key FILE, or tls.key in the config file)",
    "tls.cert: missing: listen[1] 'tls:127.0.0.1:6653' needs the controller's certificate (--tls-cert FILE, or tls.cert in the config file)",
  ]);
  t.deepEqual(configProblems(() => validateRunConfig({ listen: ['tls::6653'], tls: { key: pki.serverKey, ca: pki.caCert } }, 'run.yaml')), [
    "tls.cert: missing: listen[0] 'tls::6653' needs the controller's certificate (--tls-cert FILE, or tls.cert in the config file)",
  ]);
});

test('tls files without a tls: listen target are refused rather than left unused', (t) => {
  // a user who names a CA expects switches to be verified: listening in the clear instead must not pass silently
  t.deepEqual(configProblems(() => validateRunConfig({ listen: ['tcp::6653'], tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert } }, 'run.yaml')), [
    "tls: key, cert, ca given, but no listen target is 'tls:HOST:PORT' to use them",
  ]);
  t.deepEqual(configProblems(() => validateRunConfig({ tls: { ca: pki.caCert } }, 'run.yaml')), ["tls: ca given, but no listen target is 'tls:HOST:PORT' to use it"]);
  t.notThrows(() => validateRunConfig({ listen: ['tcp::6653'], tls: {} }, 'run.yaml'), 'an empty tls section names no file');
});

test('unreadable, non-PEM, encrypted and mismatched tls files are each reported with their path', (t) => {
  const missing = join(dir, 'no-such-key.pem');
  const notPem = writeConfig('not-pem.txt', 'hello\n');
  t.deepEqual(configProblems(() => validateRunConfig({ listen: ['tls::6653'], tls: { key: missing, cert: dir, ca: notPem } }, 'run.yaml')), [
    `tls.key: cannot read ${missing}: ENOENT`,
    `tls.cert: cannot read ${dir}: EISDIR`,
    `tls.ca: ${notPem} holds no PEM CA certificate`,
  ]);
  t.deepEqual(configProblems(() => validateRunConfig({ listen: ['tls::6653'], tls: { key: pki.serverCert, cert: pki.serverKey } }, 'run.yaml')), [
    `tls.key: ${pki.serverCert} holds no PEM private key`,
    `tls.cert: ${pki.serverKey} holds no PEM certificate`,
  ]);
  t.deepEqual(configProblems(() => validateRunConfig({ listen: ['tls::6653'], tls: { key: pki.clientKey, cert: pki.serverCert } }, 'run.yaml')), [
    `tls.key: ${pki.clientKey} is not the private key of the certificate ${pki.serverCert}`,
  ]);
  t.deepEqual(configProblems(() => validateRunConfig({ listen: ['tls::6653'], tls: { key: pki.encryptedKey, cert: pki.serverCert } }, 'run.yaml')), [
    `tls.key: ${pki.encryptedKey} is encrypted; zonemesh takes an unencrypted private key`,
  ]);
});

test('a malformed tls section is reported once, with every other problem of the document', (t) => {
  t.deepEqual(configProblems(() => validateRunConfig({ listen: ['tls::6653', 'nowhere'], tls: { key: 7, pem: 'x.pem', cert: pki.serverCert }, logLevel: 'loud' }, 'run.yaml')), [
    "listen[1]: 'nowhere' is not 'unix:PATH', '[tcp:]HOST:PORT' or 'tls:HOST:PORT'",
    "logLevel: 'loud' is not one of trace, debug, info, warn, error, fatal, silent",
    'tls.key: must be the path of a PEM file',
    'tls.pem: unknown key (known: key, cert, ca)',
  ]);
  t.deepEqual(configProblems(() => validateRunConfig({ listen: ['tls::6653'], tls: 'ctl.pem' }, 'run.yaml')), [
    'tls: must be a mapping such as { key: ctl-privkey.pem, cert: ctl-cert.pem, ca: switchca/cacert.pem }',
  ]);
});

test('run flags: --listen tls: with --tls-key/--tls-cert/--tls-ca', (t) => {
  const { config } = runConfig(['--listen', 'tls:127.0.0.1:0', '--tls-key', pki.serverKey, '--tls-cert', pki.serverCert, '--tls-ca', pki.caCert]);
  t.like(config.listen[0], { transport: 'tls', host: '127.0.0.1', port: 0, ca: pki.read(pki.caCert), requestCert: true, rejectUnauthorized: true });
  t.deepEqual(config.tls, { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert });
  const message = thrown(() => runConfig(['--listen', 'tls:127.0.0.1:0', '--tls-key', join(dir, 'nope.pem')]));
  t.is(
    message,
    `command line: 2 problems\n  tls.key: cannot read ${join(dir, 'nope.pem')}: ENOENT\n` +
      "  tls.cert: missing: listen[0] 'tls:127.0.0.1:0' needs the controller's certificate (--tls-cert FILE, or tls.cert in the config file)",
  );
  t.regex(thrown(() => runConfig(['--tls-ca', pki.caCert])), /^command line: tls: ca given, but no listen target is 'tls:HOST:PORT'/, 'the default listener is plain TCP');
});

test('run flags override the config file: --listen and each --tls-* flag its own entry', (t) => {
  const file = writeConfig('over.yaml', `listen: ['tcp:127.0.0.1:6633']\ntls: { key: ${pki.serverKey}, cert: ${pki.serverCert}, ca: ${pki.rogueCaCert} }\n`);
  t.regex(thrown(() => loadRunConfig(file)), /tls: key, cert, ca given, but no listen target/, 'the file alone is not complete');
  const { config } = runConfig(['--config', file, '--listen', 'tls:127.0.0.1:7000', '--tls-ca', pki.caCert]);
  t.deepEqual(config.tls, { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert });
  t.deepEqual(config.listen, [
    { transport: 'tls', host: '127.0.0.1', port: 7000, key: pki.read(pki.serverKey), cert: pki.read(pki.serverCert), ca: pki.read(pki.caCert), requestCert: true, rejectUnauthorized: true },
  ]);

  // the file names the target, the flags the files; a problem names both sources
  const target = writeConfig('target.yaml', "listen: ['tls::6653']\n");
  t.like(runConfig(['--config', target, '--tls-key', pki.serverKey, '--tls-cert', pki.serverCert]).config.listen[0], { transport: 'tls', port: 6653, requestCert: false });
  t.is(
    thrown(() => runConfig(['--config', target, '--tls-key', pki.serverKey])),
    `${target} + command line: tls.cert: missing: listen[0] 'tls::6653' needs the controller's certificate (--tls-cert FILE, or tls.cert in the config file)`,
  );
  t.regex(thrown(() => runConfig(['--config', target])), new RegExp(`^${target}: 2 problems\\n  tls.key: missing`), 'the file alone: its name only');
});

test("an edit of the config file is completed with the run's flags, as at startup", async (t) => {
  const file = writeConfig('watched.yaml', "listen: ['tls::6653']\nsettings: { static-flows: { miss: drop } }\n");
  const { config, load } = runConfig(['--config', file, '--tls-key', pki.serverKey, '--tls-cert', pki.serverCert]);
  writeFileSync(file, "listen: ['tls::6653']\nsettings: { static-flows: { miss: controller } }\n");
  const edits: unknown[] = [];
  const rejected: string[] = [];
  const watched = new RunConfigFile(file, load);
  watched.changes$.subscribe((c) => edits.push(c));
  watched.rejected$.subscribe((e) => rejected.push(e.message));
  t.true(await watched.reload());
  watched.close();
  t.deepEqual(rejected, []);
  t.deepEqual(edits, [{ ...config, settings: { 'static-flows': { miss: 'controller' } } }], 'the same listeners, the new settings');
  const alone: string[] = [];
  const plain = new RunConfigFile(file);
  plain.rejected$.subscribe((e) => alone.push(e.message));
  t.false(await plain.reload());
  plain.close();
  t.is(alone.length, 1, 'the file alone (without the flags) lacks the key and certificate');
});
