import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The PEM files `makePkiFiles` writes: paths, and `read` for their contents. */
export interface PkiFiles {
  dir: string;
  /** the CA that signs both the controller's and the switches' certificates */
  caCert: string;
  /** the controller's key and certificate (CN localhost, SAN DNS:localhost and IP:127.0.0.1) */
  serverKey: string;
  serverCert: string;
  /** a switch certificate the CA signed */
  clientKey: string;
  clientCert: string;
  /** a switch certificate signed by another CA */
  rogueCaCert: string;
  rogueKey: string;
  rogueCert: string;
  /** the server key, encrypted with a passphrase */
  encryptedKey: string;
  read(path: string): string;
}

/** A throwaway PKI made with openssl in `dir` (EC P-256 keys, valid for a day). */
export function makePkiFiles(dir: string): PkiFiles {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = (name: string) => ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', `${name}.key`);
  key('ca');
  ssl('req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=zonemesh test CA', '-days', '1', '-out', 'ca.crt');
  key('rogue-ca');
  ssl('req', '-x509', '-new', '-key', 'rogue-ca.key', '-subj', '/CN=rogue CA', '-days', '1', '-out', 'rogue-ca.crt');
  const issue = (name: string, cn: string, ca: string, ext: string) => {
    key(name);
    ssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '1', '-extfile', ext, '-out', `${name}.crt`);
  };
  execFileSync('sh', ['-c', 'printf "subjectAltName=DNS:localhost,IP:127.0.0.1\\n" > server.ext; printf "extendedKeyUsage=clientAuth\\n" > client.ext'], { cwd: dir });
  issue('server', 'localhost', 'ca', 'server.ext');
  issue('client', 'switch-1', 'ca', 'client.ext');
  issue('rogue', 'switch-rogue', 'rogue-ca', 'client.ext');
  ssl('pkey', '-in', 'server.key', '-aes256', '-passout', 'pass:secret', '-out', 'encrypted.key');
  const at = (f: string) => join(dir, f);
  return {
    dir,
    caCert: at('ca.crt'),
    serverKey: at('server.key'),
    serverCert: at('server.crt'),
    clientKey: at('client.key'),
    clientCert: at('client.crt'),
    rogueCaCert: at('rogue-ca.crt'),
    rogueKey: at('rogue.key'),
    rogueCert: at('rogue.crt'),
    encryptedKey: at('encrypted.key'),
    read: (path) => readFileSync(path, 'utf8'),
  };
}
