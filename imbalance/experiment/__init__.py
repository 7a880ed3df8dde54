"""Episodes and sweeps: building an episode from a configuration (build.py), playing it
(episode.py), recording it as one MLflow run (runner.py) with the terminal account
(console.py), and a Hydra multirun as one parent run (sweep.py, sweep_summary.py);
calibration of a task (calibration.py) runs many episodes without tracking.
"""
