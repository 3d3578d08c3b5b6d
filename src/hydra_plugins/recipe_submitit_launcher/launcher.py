"""hydra-submitit-launcher's SLURM and local launchers, with what a sweep on a cluster needs around them.

The plugin's ``launch`` blocks on each job in turn and prints nothing: a job that can never start waits forever,
Ctrl-C leaves the jobs queued, and results stay in ``.submitit/``. These launchers submit the same way, then
- fill the resources left ``null`` from the run's config (``recipe.runtime.slurm.fill_request``);
- print each job's one-line result (state, the optimized metric, its run folder) as it finishes, where its
  logs are, and ``Outputs:``;
- stop in one line when SLURM says a job can never start, and cancel the sweep's jobs on Ctrl-C;
- in the job, resume a job requeued after its time limit from its run folder's newest checkpoint that loads.
(In the job, ``recipe.runtime.distributed.isolate_multirun_job`` lets Lightning's DDP re-run the entry script, not
submitit's, for its other processes: that works for the plugin's own ``submitit_local`` and ``submitit_slurm`` too.)
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, setup_globals
from hydra_plugins.hydra_submitit_launcher import submitit_launcher as plugin
from omegaconf import OmegaConf

from recipe.runtime.slurm import NEVER_STARTS, fill_request  # light: no torch, no rich

POLL_S = 2.0
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE")


class _Reporting:
    """What both launchers add to hydra-submitit-launcher's (mixed in before it)."""

    params: dict[str, Any]
    config: Any
    _EXECUTOR: str

    def launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
        import submitit

        params = self.request()
        init = {"folder": params.pop("submitit_folder")}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        shared = set(OmegaConf.structured(plugin.BaseQueueConf).keys())
        executor.update_parameters(**{k if k in shared else f"{self._EXECUTOR}_{k}": v for k, v in params.items()})

        sweep_dir = Path(str(self.config.hydra.sweep.dir)).resolve()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        numbers = range(initial_job_idx, initial_job_idx + len(job_overrides))
        args = [
            (list(o), "hydra.sweep.dir", n, f"job_id_for_{n}", Singleton.get_state())
            for n, o in zip(numbers, job_overrides, strict=True)
        ]
        try:
            jobs = executor.map_array(self, *zip(*args, strict=True))
        except Exception as err:  # sbatch refused the request: its own words, in one line
            from recipe.cli.console import print_error  # rich: imported when needed, not by Hydra's plugin scan

            print_error(_last_line(str(err)))
            raise SystemExit(2) from None
        print(f"Submitted {len(jobs)} job(s) ({self._EXECUTOR}): {', '.join(j.job_id for j in jobs)}; "
              f"job logs in {Path(init['folder'].replace('%j', '<job id>'))}", flush=True)  # fmt: skip
        try:
            results = self._wait(jobs, [list(o) for o in job_overrides], list(numbers))
        except BaseException as stop:
            unfinished = [job for job in jobs if not job.paths.result_pickle.exists()]
            for job in unfinished:
                job.cancel(check=False)
            if isinstance(stop, KeyboardInterrupt):
                print(f"Ctrl-C: cancelled job(s) {', '.join(j.job_id for j in unfinished)}", file=sys.stderr)
                raise SystemExit(130) from None
            raise
        print(f"Outputs: {sweep_dir}", flush=True)
        return results

    def request(self) -> dict[str, Any]:
        return dict(self.params)

    def _wait(self, jobs: list, overrides: list[list[str]], numbers: list[int]) -> list[JobReturn]:
        varying = {o for o in (x for job in overrides for x in job) if not all(o in job for job in overrides)}
        results: dict[int, JobReturn] = {}
        while len(results) < len(jobs):
            ended = self._ended([j for i, j in enumerate(jobs) if i not in results])
            for i, job in enumerate(jobs):
                if i not in results and job.job_id in ended:
                    results[i] = self._collect(job, overrides[i])
                    label = " ".join(o for o in overrides[i] if o in varying)
                    print(f"#{numbers[i]} {self._summary(job, results[i])}  {label}".rstrip(), flush=True)
            if len(results) < len(jobs):
                time.sleep(POLL_S)
        return [results[i] for i in range(len(jobs))]

    def _ended(self, jobs: list) -> set[str]:
        """The ids of the ``jobs`` that have ended."""
        return {job.job_id for job in jobs if job.done()}

    def _collect(self, job: Any, overrides: list[str]) -> JobReturn:
        try:
            return job.results()[0]
        except Exception as err:  # the job died outside Hydra's run_job (killed, out of memory, out of requeues)
            return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=err)

    def _summary(self, job: Any, ret: JobReturn) -> str:
        """``<STATE> <metric or error> <run folder or log file>``."""
        if ret.status == JobStatus.COMPLETED:
            # a run with task=null names its metric only once its data is loaded, in the job
            metric, value = ret.cfg.get("optimized_metric") or "optimized_metric", ret.return_value
            shown = f"{value:.4g}" if isinstance(value, float) else value
            return f"COMPLETED {metric}={shown}  {ret.hydra_cfg.hydra.runtime.output_dir}"
        from submitit.core.utils import FailedJobError, UncompletedJobError

        err = ret._return_value
        if isinstance(err, UncompletedJobError) and not isinstance(err, FailedJobError):  # at the last warning
            limit = self.params.get("max_num_timeout", 0)
            return f"TIMEOUT after {limit} requeue(s) (hydra.launcher.max_num_timeout)  log: {job.paths.stdout}"
        return f"FAILED {_last_line(str(err))}  log: {job.paths.stderr}"

    def __call__(self, sweep_overrides: list[str], job_dir_key: str, job_num: int, *rest: Any) -> JobReturn:
        """In the job: resume from its run folder's checkpoint after a requeue."""
        last = self._last_checkpoint(sweep_overrides, job_num) if os.environ.get("SLURM_RESTART_COUNT") else None
        if last is not None:
            print(f"Requeued: resuming from {last}", flush=True)
            sweep_overrides = [*sweep_overrides, f"ckpt_path='{last}'"]  # quoted: run folder names hold = and ,
        return super().__call__(sweep_overrides, job_dir_key, job_num, *rest)  # type: ignore[misc]

    def _last_checkpoint(self, sweep_overrides: list[str], job_num: int) -> str | None:
        """The checkpoint this job's run folder (found as Hydra will name it) resumes from: ``last.ckpt``, or past a
        torn one the newest that loads (``recipe.runtime.resume_path.newest_checkpoint``)."""
        from recipe.runtime.resume_path import newest_checkpoint  # loads checkpoints: torch, in the job only

        setup_globals()
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, sweep_overrides)  # type: ignore[attr-defined]
        cfg.hydra.job.num = job_num
        return newest_checkpoint(Path(str(cfg.hydra.sweep.dir), str(cfg.hydra.sweep.subdir)))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


class SlurmLauncher(_Reporting, plugin.SlurmLauncher):
    """``hydra/launcher=slurm``: each job of a sweep is a SLURM job."""

    def request(self) -> dict[str, Any]:
        return fill_request(self.params, self.config)

    def _ended(self, jobs: list) -> set[str]:
        """Jobs that left the queue (submitit's own check asks sacct, which clusters without accounting lack);
        a pending job that can never start cancels the sweep, in one line."""
        if not jobs:
            return set()
        ids = ",".join(j.job_id for j in jobs)
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%r", "-j", ids], capture_output=True, text=True).stdout
        queued = {}
        for line in out.splitlines():
            job_id, state, reason = [*line.split("|"), "", ""][:3]
            queued[job_id] = state
            if state == "PENDING" and reason in NEVER_STARTS:
                from recipe.cli.console import print_error

                print_error(
                    f"SLURM job {job_id} can never start ({reason}): the request exceeds what partition "
                    f"{self.params.get('partition') or '(default)'} offers; see `scontrol show job {job_id}` "
                    "and hydra.launcher.cpus_per_task, gpus_per_node, tasks_per_node, nodes, timeout_min"
                )
                raise SystemExit(2)
        return {j.job_id for j in jobs if j.paths.result_pickle.exists() or queued.get(j.job_id) in (None, *ENDED)}

    def _collect(self, job: Any, overrides: list[str]) -> JobReturn:
        if job.paths.result_pickle.exists():
            return super()._collect(job, overrides)
        # gone from the queue without a result (killed, or a signal before submitit took it): the log's last line
        why = _last_line(job.paths.stderr.read_text()) if job.paths.stderr.exists() else "ended without a log"
        return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=RuntimeError(why))


class LocalLauncher(_Reporting, plugin.LocalLauncher):
    """``hydra/launcher=local``: each job of a sweep is a local process, as on a cluster."""
