"""Training runs as every entry point asks for them: the layer between the CLI and the library.

* :class:`RunSpec` and :func:`run_experiment` (``manager.py``): what a run is, and the one function
  ``rlrec train``, ``rlrec benchmark`` and ``rlrec tune`` call to carry it out (data, validation,
  best model, resume checks).
* :func:`train` (``training.py``): the run itself (env, model, checkpoints, signals, run record).
* :func:`run_benchmark` (``benchmark.py``) over the entries of ``entries.py``.

The package itself imports nothing: ``rlrec --help`` reads the benchmark's entries
(``rlrec.experiments.entries``, no torch) without paying for the rest. Import from the modules.
"""
