"""Learners and what every learner shares; import from the modules.

* ``tabular_q.QLearningAgent``, ``dqn.DQNAgent`` and ``slateq.SlateQAgent``: our hand-written
  learners, with SB3's API, over ``base.py`` (SB3 plumbing they share);
* ``scoring.score_movies``: a score per movie from any learner;
* ``factory``: what each ``--algo`` names (``ALGOS``), its zoo-format YAML defaults
  (``load_hyperparams``), ``make_model`` and ``load_model`` (``sb3_zip.py`` for SB3 zips);
* ``runs``: a run's folder and record (``RunFolder``, ``load_run``).

The package itself imports nothing, so that ``import rlrec.agents.factory`` (``rlrec --help``)
does not pull in torch. A training run is :mod:`rlrec.experiments`.
"""
