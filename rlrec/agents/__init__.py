"""Learners and what every learner shares; import from the modules.

* ``tabular_q.QLearningAgent``, ``dqn.DQNAgent`` and ``slateq.SlateQAgent``: our hand-written
  learners, with SB3's API, over ``base.py`` (SB3 plumbing they share);
* ``registry``: what each ``--algo`` names (``ALGOS``); ``recipes``: its zoo-format YAML
  (``load_hyperparams``, ``split_hyperparams``); ``factory``: ``make_model``, ``save_model`` and
  ``load_model`` (``sb3_zip.py`` for SB3 zips, never unpickled);
* ``scoring.score_movies``: a score per movie from any learner;
* ``runs``: a run's folder and record (``RunFolder``, ``load_run``).

The package itself imports nothing, so that ``import rlrec.agents.registry`` (``rlrec --help``)
does not pull in torch. A training run is :mod:`rlrec.experiments`.
"""
