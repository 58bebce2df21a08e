// The live topology page: follows `/events` (server-sent events from `zonemesh run --http`) and draws
// the state it carries. A `snapshot` replaces everything; an `update` replaces the hypervisors and
// tunnel pairs it names. Plain browser JavaScript, no build step; every name from the model is set as
// text, never as markup.
'use strict';

(() => {
  /** the last snapshot, with the updates merged in */
  let state = null;
  /** browser clock minus the controller's, to age the controller's timestamps */
  let skewMs = 0;
  let source = null;
  /** hypervisors beyond this draw the tunnel mesh as a list of the pairs that are not up */
  const MESH_MATRIX_MAX = 48;
  /** what an update redraws in place: hypervisor → its card, VM → its list item, 'from\0to' → its mesh cell */
  const cards = new Map();
  const vmItems = new Map();
  const meshCells = new Map();

  /** An element with attributes (data-* and class included) and children (strings become text). */
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined && v !== false) e.setAttribute(k, String(v));
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  const num = (n) => (n === null || n === undefined ? '—' : n.toLocaleString('en-US'));
  function bytes(n) {
    if (n === null || n === undefined) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  }
  const rate = (n) => (n === null || n === undefined ? '—' : `${n}/s`);
  function ago(at) {
    if (at === null || at === undefined) return 'never';
    const s = Math.max(0, Math.round((Date.now() - skewMs - at) / 1000));
    return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
  }

  const STATE_TEXT = { 'in-sync': 'in sync', 'out-of-sync': 'out of sync', connected: 'connected', down: 'down' };

  function setConnection(what, text) {
    const e = document.getElementById('connection');
    e.dataset.state = what;
    e.textContent = text;
  }

  function connect() {
    source = new EventSource('events');
    source.onopen = () => setConnection('live', 'live');
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // refused (too many viewers) or the controller is gone: try again later, ourselves
        setConnection('closed', 'disconnected; retrying in 10 s');
        setTimeout(connect, 10000);
      } else setConnection('reconnecting', 'reconnecting…');
    };
    source.addEventListener('snapshot', (e) => {
      state = JSON.parse(e.data);
      skewMs = Date.now() - state.at;
      render();
    });
    source.addEventListener('update', (e) => {
      if (!state) return;
      const u = JSON.parse(e.data);
      skewMs = Date.now() - u.at;
      state.at = u.at;
      // only what changed is drawn again: a page of a thousand hypervisors stays responsive
      for (const hv of u.hypervisors) {
        const i = state.hypervisors.findIndex((x) => x.name === hv.name);
        if (i >= 0) state.hypervisors[i] = hv;
        else state.hypervisors.push(hv);
        redrawHypervisor(hv);
      }
      for (const t of u.tunnels) {
        const i = state.tunnels.findIndex((x) => x.from === t.from && x.to === t.to);
        if (i >= 0) state.tunnels[i] = t;
        else state.tunnels.push(t);
        redrawTunnel(t);
      }
      renderSummary();
    });
  }

  function render() {
    const byName = new Map(state.hypervisors.map((hv) => [hv.name, hv]));
    renderSummary();
    renderZones(byName);
    renderVpcs(byName);
    renderTunnels();
  }

  function redrawHypervisor(hv) {
    const old = cards.get(hv.name);
    if (!old) return render();
    old.replaceWith(card(hv));
    for (const tier of state.vpcs.flatMap((v) => v.tiers)) {
      for (const vm of tier.vms) if (vm.hypervisor === hv.name) vmItems.get(vm.name)?.replaceWith(vmItem(vm, hv));
    }
  }

  // a probe's round trip measures both directions: a pair's health fills both of its cells
  function redrawTunnel(t) {
    const cells = [meshCells.get(`${t.from}\u0000${t.to}`), meshCells.get(`${t.to}\u0000${t.from}`)];
    if (!cells[0] || !cells[1]) return renderTunnels();
    for (const cell of cells) {
      cell.dataset.state = t.state;
      cell.textContent = tunnelText(t);
    }
  }

  function renderSummary() {
    const hvs = state.hypervisors;
    const down = hvs.filter((x) => x.state === 'down').length;
    const outOfSync = hvs.filter((x) => x.state === 'out-of-sync').length;
    const vms = state.vpcs.reduce((n, v) => n + v.tiers.reduce((m, t) => m + t.vms.length, 0), 0);
    const parts = [
      `${state.zones.length} zones`,
      `${hvs.length} hypervisors (${down} down, ${outOfSync} out of sync)`,
      `${state.vpcs.length} VPCs`,
      `${vms} VMs`,
      `counters read every ${state.pollIntervalMs / 1000} s`,
      `updated ${new Date(state.at).toLocaleTimeString()}`,
    ];
    document.getElementById('summary').textContent = parts.join(' · ');
  }

  function renderZones(byName) {
    cards.clear();
    const zones = state.zones.map((z) =>
      h('div', { class: 'zone', 'data-zone': z.name }, h('h3', {}, z.name, ' ', h('small', {}, `underlay ${z.underlay}`)), h('div', { class: 'cards' }, z.hypervisors.map((n) => byName.get(n)).filter(Boolean).map(card))),
    );
    const outside = state.hypervisors.filter((x) => x.zone === null);
    if (outside.length) zones.push(h('div', { class: 'zone', 'data-zone': '' }, h('h3', {}, 'switches outside the model'), h('div', { class: 'cards' }, outside.map(card))));
    document.getElementById('zones').replaceChildren(...zones);
  }

  function card(hv) {
    const lines = [`dpid ${hv.dpid}`];
    if (hv.tunnelIp) lines.push(`tunnel ${hv.tunnelIp}`);
    if (hv.echoRttMs !== null) lines.push(`echo ${hv.echoRttMs} ms`);
    const f = hv.flows;
    const flows =
      f.installed === null
        ? `flows: ${num(f.desired)} desired, installed not read yet`
        : `flows: ${num(f.desired)} desired, ${num(f.installed)} installed ${ago(f.polledAt)}${f.installed === f.desiredAtPoll ? '' : ` (when ${num(f.desiredAtPoll)} were desired)`}`;
    const s = hv.lastSync;
    const sync = s ? `last sync: ${s.kind}, +${s.adds} ~${s.modifies} −${s.deletes}, ${s.errors} errors, ${ago(s.at)}` : 'no sync yet';
    const session = hv.state === 'down' ? (hv.since === null ? 'never connected' : `down since ${ago(hv.since)}${hv.downReason ? ` (${hv.downReason.replace(/_/g, ' ')})` : ''}`) : `connected ${ago(hv.since)}`;
    const e = h(
      'article',
      { class: 'hv', 'data-hypervisor': hv.name, 'data-state': hv.state },
      h('header', {}, h('strong', {}, hv.name), h('span', { class: 'badge' }, STATE_TEXT[hv.state] || hv.state)),
      h('p', { class: 'meta' }, lines.join(' · ')),
      h('p', { class: 'meta' }, session),
      hv.state === 'down' ? null : h('p', { class: 'meta' }, flows),
      hv.state === 'down' ? null : h('p', { class: 'meta' }, sync),
      hv.ports.length ? ports(hv) : null,
    );
    cards.set(hv.name, e);
    return e;
  }

  function ports(hv) {
    const head = h('tr', {}, ['port', 'VM', 'rx pkts', 'tx pkts', 'rx', 'tx', 'rx/s', 'tx/s', 'drops rx/tx'].map((c) => h('th', {}, c)));
    const rows = hv.ports.map((p) =>
      h(
        'tr',
        { 'data-port': p.name ?? p.portNo, 'data-port-vm': p.vm, 'data-rx-packets': p.rxPackets, 'data-tx-packets': p.txPackets },
        h('td', {}, p.name ?? `#${p.portNo}`),
        h('td', {}, p.vm ?? ''),
        h('td', { class: 'n' }, num(p.rxPackets)),
        h('td', { class: 'n' }, num(p.txPackets)),
        h('td', { class: 'n' }, bytes(p.rxBytes)),
        h('td', { class: 'n' }, bytes(p.txBytes)),
        h('td', { class: 'n' }, rate(p.rxPps)),
        h('td', { class: 'n' }, rate(p.txPps)),
        h('td', { class: 'n' }, `${num(p.rxDropped)} / ${num(p.txDropped)}`),
      ),
    );
    const more = hv.portsOmitted ? h('p', { class: 'meta' }, `${hv.portsOmitted} more ports not shown`) : null;
    return h('div', { class: 'ports' }, h('table', {}, h('thead', {}, head), h('tbody', {}, rows)), more);
  }

  function vmItem(vm, hv) {
    const p = hv ? hv.ports.find((x) => x.vm === vm.name) : undefined;
    const traffic = !hv || hv.state === 'down' ? 'hypervisor down' : p ? `rx ${rate(p.rxPps)} · tx ${rate(p.txPps)}` : 'no counters yet';
    const e = h('li', { 'data-vm': vm.name, 'data-state': hv ? hv.state : 'down' }, h('strong', {}, vm.name), ` ${vm.ip ?? vm.ipv6} on ${vm.hypervisor}`, h('span', { class: 'meta' }, ` · ${traffic}`));
    vmItems.set(vm.name, e);
    return e;
  }

  function renderVpcs(byName) {
    vmItems.clear();
    const vpcs = state.vpcs.map((v) =>
      h(
        'div',
        { class: 'vpc', 'data-vpc': v.name },
        h('h3', {}, v.name, ' ', h('small', {}, `VNI ${v.vni}`)),
        h(
          'div',
          { class: 'tiers' },
          v.tiers.map((t) =>
            h(
              'div',
              { class: 'tier', 'data-tier': t.name },
              h('h4', {}, t.name, ' ', h('small', {}, t.cidr ?? t.ipv6)),
              h('ul', {}, t.vms.map((vm) => vmItem(vm, byName.get(vm.hypervisor)))),
            ),
          ),
        ),
      ),
    );
    document.getElementById('vpcs').replaceChildren(...vpcs);
  }

  function tunnelText(t) {
    if (!t) return 'unknown';
    if (t.state === 'down') return 'down';
    return `${(t.lossRatio * 100).toFixed(1)}% loss${t.rttMs === null ? '' : ` · ${t.rttMs.toFixed(1)} ms`}`;
  }

  function renderTunnels() {
    meshCells.clear();
    const names = state.zones.flatMap((z) => z.hypervisors);
    const pairs = new Map(state.tunnels.map((t) => [`${t.from}\u0000${t.to}`, t]));
    document.getElementById('tunnel-note').textContent = state.tunnelMonitor
      ? 'Loss and round trip of each pair, as the tunnel monitor measures them (a round trip: both directions).'
      : "No tunnel monitor runs in this controller: every tunnel's health is unknown.";
    let body;
    if (names.length <= MESH_MATRIX_MAX) {
      const head = h('tr', {}, h('th', {}, 'from \\ to'), names.map((n) => h('th', {}, n)));
      const rows = names.map((from) =>
        h(
          'tr',
          {},
          h('th', {}, from),
          names.map((to) => {
            if (from === to) return h('td', { class: 'self' }, '—');
            const key = `${from}\u0000${to}`;
            const t = pairs.get(key) ?? pairs.get(`${to}\u0000${from}`);
            const cell = h('td', { 'data-from': from, 'data-to': to, 'data-state': t ? t.state : 'unknown' }, tunnelText(t));
            meshCells.set(key, cell);
            return cell;
          }),
        ),
      );
      body = h('table', { class: 'mesh' }, h('thead', {}, head), h('tbody', {}, rows));
    } else {
      const bad = state.tunnels.filter((t) => t.state !== 'up');
      body = h('ul', {}, bad.length ? bad.map((t) => h('li', { 'data-from': t.from, 'data-to': t.to, 'data-state': t.state }, `${t.from} → ${t.to}: ${tunnelText(t)}`)) : h('li', {}, `${state.tunnels.length} pairs measured, all up`));
    }
    const tunnels = document.getElementById('tunnels');
    tunnels.dataset.monitor = state.tunnelMonitor ? 'yes' : 'no';
    tunnels.replaceChildren(body);
  }

  // ages ("12 s ago") move on between events
  setInterval(() => state && render(), 5000);
  connect();
})();
