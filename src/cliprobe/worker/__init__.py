"""Warm per-model workers: the model's stages without a fixed price per cell.

A sweep of 95 cells used to start 95 Python processes that each imported torch and open_clip
and built the model before embedding a few images. ``python -m cliprobe.stages <stage>``
(the command every dvc.yaml stage runs) now hands the stages of one model's cells (embed,
manipulate, classifier, score) to a worker process that keeps that model loaded:

- one worker per model config and code version (:mod:`cliprobe.worker.identity`): a worker of
  an older cliprobe, another Python environment or other model settings is never reused;
- started on demand by the first stage that needs it, stopped after ``embed.worker_idle_s``
  seconds without work (``embed.worker: false`` or ``CLIPROBE_WORKER=0`` turn workers off);
- the worker runs the same stage code in the same way (the stage's own working directory,
  environment, arguments, stdout and stderr), so outputs are byte-identical to a run in the
  stage's own process (tested); DVC still runs, caches and skips every stage as before;
- nothing hangs or goes wrong when a worker cannot help: a stale socket is replaced, a worker
  busy with another DVC run, one that cannot start, that does not answer or that dies mid-stage
  means the stage runs in its own process (resuming from the chunks the worker completed); a
  stage whose DVC process is killed kills the worker's work too.

Workers live in a private folder (``$CLIPROBE_WORKER_DIR``, else
``$XDG_RUNTIME_DIR/cliprobe-workers``, else ``/tmp/cliprobe-workers-<uid>``, mode 0700) and only
serve their own user. ``cliprobe workers`` lists them, ``cliprobe workers --stop`` stops them.
"""
