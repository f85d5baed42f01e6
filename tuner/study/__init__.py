"""``python -m tuner.study NAME``: a study's sweeps (its parts × datasets × seeds), one command.

The study is declared in ``search_spaces/studies/<NAME>.py``. Every sweep is started through the
sweep's own command line (``tuner.sweep.main``), in this process, under one MLflow parent run;
each configuration trains once however many parts use it (a sweep reuses the finished trials of
its experiment). ``--estimate`` prices it, ``--resume`` continues it after any stop, and it ends
in the finished report (``analysis.report``) with whether the seeds suffice per claim.
Modules: ``cli`` (the command line), ``parts`` (the sweeps' command lines and the
configurations each fills), ``runner`` (running and resuming), ``price``, ``report``.
"""
