/**
 * Instruments inside the droptrace process that bench/top-flood.ts measures (`node --import`
 * this file). Both start on SIGUSR2, which the bench sends once the probes are loaded:
 *  - DT_CPU_PROF_DIR: a CPU profile, written there at exit. Not `node --cpu-prof`: its sampling
 *    signal (SIGPROF, every millisecond) interrupts the BPF verifier, which gives up with EAGAIN,
 *    so nothing would attach.
 *  - DT_MEM_LOG: one line a second of process.memoryUsage() in MiB (where the RSS goes: the JS
 *    heap, Buffers outside it, or native memory), appended to that file.
 *  - DT_HEAP_SNAPSHOT_DIR: a heap snapshot on the second SIGUSR2 (the bench sends it as the
 *    flood ends: what the JS heap holds then).
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { writeHeapSnapshot } from 'node:v8';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.DT_CPU_PROF_DIR;
const memLog = process.env.DT_MEM_LOG;
const heapDir = process.env.DT_HEAP_SNAPSHOT_DIR;
let session: Session | null = null;
let started = false;

process.on('SIGUSR2', () => {
  if (started) {
    if (heapDir) writeHeapSnapshot(join(heapDir, `top-${process.pid}.heapsnapshot`));
    return;
  }
  started = true;
  if (dir) {
    session = new Session();
    session.connect();
    session.post('Profiler.enable', () => session!.post('Profiler.start'));
  }
  if (memLog) {
    const mib = (n: number) => (n / 1048576).toFixed(1);
    const t0 = Date.now();
    appendFileSync(memLog, 't_s\trss\theapTotal\theapUsed\texternal\tarrayBuffers\n');
    setInterval(() => {
      const m = process.memoryUsage();
      appendFileSync(memLog, `${Math.round((Date.now() - t0) / 1000)}\t${mib(m.rss)}\t${mib(m.heapTotal)}\t${mib(m.heapUsed)}\t${mib(m.external)}\t${mib(m.arrayBuffers)}\n`);
    }, 1000).unref();
  }
});

// a session on the process's own thread answers synchronously: the profile is out before exit
process.on('exit', () => {
  session?.post('Profiler.stop', (err, r) => {
    if (!err && dir) writeFileSync(join(dir, `top-${process.pid}.cpuprofile`), JSON.stringify(r.profile));
  });
});
