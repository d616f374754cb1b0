#!/usr/bin/env python3
"""Herald on PostgreSQL: one node against three, with the shared harness's load generator.

    cp -r ../shared/bench /tmp/herald-bench && (cd /tmp/herald-bench && patch -p1 < $PWD/Benchmarks/Cluster/wsbench-sub-ports.patch && ./build)
    swift build -c release --product herald
    Benchmarks/Cluster/cluster-bench.py --wsbench /tmp/herald-bench/bin/wsbench --reps 3

Every run gets a fresh database on one PostgreSQL (Debian's postgresql, started here with
Tests/HeraldServerTests/Fixtures/postgres/pg.sh on 127.0.0.1) and fresh `herald serve
--engine postgres` nodes; the publisher always talks to node 1. Topologies, interleaved within
each repetition:

  1 node     every subscriber on node 1
  3 nodes    subscribers spread round-robin over nodes 1-3 (fan-out), or only on nodes 2 and 3
             (latency and publish rate: every delivery crosses PostgreSQL to another node)

Scenarios (wsbench, see ../shared/bench/README.md):

  fanout          1,000 subscribers, one channel without a log (crosses nodes in NOTIFY only)
  fanout-logged   the same on a channel with history (offsets assigned in PostgreSQL)
  latency@1000    100 subscribers, 1,000 publishes/s on a channel with history
  pubrate         one subscriber, window 4,000, channel with history: publishes/s through PostgreSQL

Prints one JSON line per run and a markdown table of medians (min-max) at the end. Loopback
only; ports 19450-19469.
"""
import argparse, json, os, signal, statistics, subprocess, sys, tempfile, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PG_SH = os.path.join(ROOT, 'Tests/HeraldServerTests/Fixtures/postgres/pg.sh')

SCENARIOS = {
    'fanout':        dict(logged=False, cross=False, args=['--scenario', 'fanout', '--subs', '1000']),
    'fanout-logged': dict(logged=True,  cross=False, args=['--scenario', 'fanout', '--subs', '1000']),
    'latency@1000':  dict(logged=True,  cross=True,  args=['--scenario', 'latency', '--subs', '100', '--rate', '1000']),
    'pubrate':       dict(logged=True,  cross=True,  args=['--scenario', 'fanout', '--subs', '1', '--window', '4000']),
}


def cpu_seconds(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    except OSError:
        return 0.0


def wait_ready(admin_port, deadline):
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f'http://127.0.0.1:{admin_port}/v1/ready', timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit(f'node on admin port {admin_port} not ready')


def run_one(args, work, pg_port, run_no, scenario, nodes):
    spec = SCENARIOS[scenario]
    db = f'bench{run_no}'
    subprocess.run(['createdb', '-h', '127.0.0.1', '-p', str(pg_port), '-U', 'herald', db], check=True)
    url = f'postgres://herald@127.0.0.1:{pg_port}/{db}'
    config = os.path.join(work, 'logged.json')
    procs = []
    try:
        for n in range(nodes):
            data = os.path.join(work, f'run{run_no}-n{n + 1}')
            os.makedirs(data)
            cmd = [args.herald, 'serve', '--host', '127.0.0.1', '--port', str(19451 + n), '--admin-port', str(19461 + n),
                   '--engine', 'postgres', '--postgres-url', url, '--node-name', f'n{n + 1}', '--data-dir', data,
                   '--log-level', 'warning']
            if spec['logged']:
                cmd += ['--config', config]
            procs.append(subprocess.Popen(cmd, stdout=open(os.path.join(data, 'log'), 'w'), stderr=subprocess.STDOUT))
        deadline = time.time() + 30
        for n in range(nodes):
            wait_ready(19461 + n, deadline)
        if nodes == 1:
            sub_ports = [19451]
        elif spec['cross']:
            sub_ports = [19451 + n for n in range(1, nodes)]
        else:
            sub_ports = [19451 + n for n in range(nodes)]
        gen = [args.wsbench, '--proto', 'bayeux', '--url', 'ws://127.0.0.1:19451/bayeux',
               '--sub-ports', ','.join(map(str, sub_ports)), '--duration', str(args.duration)] + spec['args']
        pids = [p.pid for p in procs]
        pg = pg_pids(work)
        cpu0 = [cpu_seconds(p) for p in pids]
        pg0 = sum(cpu_seconds(p) for p in pg)
        t0 = time.time()
        out = subprocess.run(gen, capture_output=True, text=True, timeout=args.duration + 180)
        wall = time.time() - t0
        cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0)]
        pg_cpu = sum(cpu_seconds(p) for p in pg) - pg0
        lines = [l for l in out.stdout.splitlines() if l.startswith('{')]
        if not lines:
            raise SystemExit(f'wsbench printed no result: {out.stderr[-2000:]}')
        res = json.loads(lines[-1])
        res.update(topology=f'{nodes} node' + ('s' if nodes > 1 else ''), bench=scenario, sub_ports=sub_ports,
                   nodes_cpu=round(sum(cpu) / wall, 3), pg_cpu=round(pg_cpu / wall, 3), wall_s=round(wall, 1),
                   deliveries_per_cpu_s=round(res['received_total'] / sum(cpu)) if sum(cpu) > 0 else 0, command=' '.join(gen))
        for p in procs:
            if p.poll() is not None:
                res['ok'] = False
                res['error'] = f'node exited with {p.returncode}'
        return res
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        subprocess.run(['dropdb', '-h', '127.0.0.1', '-p', str(pg_port), '-U', 'herald', db], check=False)


def pg_pids(work):
    """The postmaster and its children (the nodes' backends, the writer, the WAL writer)."""
    with open(os.path.join(work, 'pg', 'postmaster.pid')) as f:
        root = int(f.readline())
    pids = [root]
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    if int(f.read().rsplit(')', 1)[1].split()[1]) == root:
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


FIGURES = [('deliveries/s', 'deliveries_per_s', '{:,.0f}'), ('publishes/s', 'pub_rate', '{:,.0f}'),
           ('p50 ms', 'lat_p50_us', 'ms'), ('p99 ms', 'lat_p99_us', 'ms'), ('p99.9 ms', 'lat_p999_us', 'ms'),
           ('lost', 'lost', '{:,.0f}'), ('deliveries per node CPU-s', 'deliveries_per_cpu_s', '{:,.0f}'), ('nodes CPU', 'nodes_cpu', '{:.2f}'), ('PostgreSQL CPU', 'pg_cpu', '{:.2f}')]


def table(runs):
    rows = ['| scenario | topology | runs | ' + ' | '.join(f[0] for f in FIGURES) + ' |',
            '|---|---|---:|' + '---:|' * len(FIGURES)]
    for scenario in SCENARIOS:
        for topology in ('1 node', '3 nodes'):
            rs = [r for r in runs if r['bench'] == scenario and r['topology'] == topology and r.get('ok')]
            if not rs:
                continue
            cells = []
            for _, key, fmt in FIGURES:
                vals = [r[key] for r in rs]
                if fmt == 'ms':
                    vals = [v / 1000 for v in vals]
                    f = '{:.2f}'
                else:
                    f = fmt
                med = statistics.median(vals)
                cells.append(f.format(med) + (f' ({f.format(min(vals))}–{f.format(max(vals))})' if len(vals) > 1 else ''))
            rows.append(f'| {scenario} | {topology} | {len(rs)} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--herald', default=os.path.join(ROOT, '.build/release/herald'))
    ap.add_argument('--wsbench', required=True, help='wsbench with Benchmarks/Cluster/wsbench-sub-ports.patch')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--duration', type=float, default=10)
    ap.add_argument('--scenarios', default=','.join(SCENARIOS))
    ap.add_argument('--out', default=None, help='also append every run as a JSON line here')
    args = ap.parse_args()
    scenarios = args.scenarios.split(',')
    work = tempfile.mkdtemp(prefix='herald-cluster-bench-')
    os.chmod(work, 0o755)
    with open(os.path.join(work, 'logged.json'), 'w') as f:
        json.dump({'channels': {'/bench/**': {'historySize': 1000}}}, f)
    pg_port = 19450
    subprocess.run(['bash', PG_SH, 'start', os.path.join(work, 'pg'), str(pg_port)], check=True, stdout=subprocess.DEVNULL)
    runs, run_no = [], 0
    try:
        for rep in range(args.reps):
            for scenario in scenarios:
                order = (1, 3) if rep % 2 == 0 else (3, 1)
                for nodes in order:
                    run_no += 1
                    res = run_one(args, work, pg_port, run_no, scenario, nodes)
                    res['rep'] = rep + 1
                    runs.append(res)
                    line = json.dumps(res)
                    print(line, flush=True)
                    if args.out:
                        with open(args.out, 'a') as f:
                            f.write(line + '\n')
    finally:
        subprocess.run(['bash', PG_SH, 'stop', os.path.join(work, 'pg')], check=False)
    print()
    print(table(runs))


if __name__ == '__main__':
    main()
