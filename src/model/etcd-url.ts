/** `etcd://HOST:PORT[,HOST:PORT...]` → the endpoints; a string saying what is wrong otherwise. */
export function parseEtcdUrl(text: string): string[] | string {
  const m = /^etcd:\/\/(.+)$/.exec(text);
  if (!m) return `'${text}' is not etcd://HOST:PORT[,HOST:PORT...]`;
  const endpoints = m[1]!.split(',');
  const bad = endpoints.find((e) => !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(e) || Number(e.slice(e.lastIndexOf(':') + 1)) > 65535);
  return bad === undefined ? endpoints : `'${bad}' in ${text} is not HOST:PORT`;
}
