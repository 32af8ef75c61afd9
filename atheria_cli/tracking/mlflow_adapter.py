"""MLflow (``train.mlflow``): the only module that imports mlflow (the 'mlflow' extra).

MLflow chooses its own run ids, so the atheria run id goes into the tag ``atheria.run_id`` and
the run is found again by it. The steps already logged are asked from MLflow itself (each
key's metric history), so a crash at any point neither duplicates nor skips a point.
"""

from __future__ import annotations

import time

from atheria_cli.config import TrackerMlflow
from atheria_cli.errors import ConfigError, StorageError
from atheria_cli.tracking import Rows

RUN_TAG = "atheria.run_id"
BATCH = 1000  # MLflow's limit of metrics per log_batch call
MAX_PARAM = 6000  # characters of one parameter value


class MlflowTracker:
    name = "mlflow"

    def __init__(self, settings: TrackerMlflow, names: dict[str, str], params: dict[str, str]) -> None:
        try:
            from mlflow.entities import Param
            from mlflow.exceptions import MlflowException
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError("train.mlflow needs the 'mlflow' extra: pip install 'atheria-cli[mlflow]'") from None
        self.client = MlflowClient(tracking_uri=settings.tracking_uri)
        try:
            experiment_id = self._experiment_id(settings.experiment or names["experiment"])
            found = self.client.search_runs(
                [experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{names['run_id']}'", max_results=1
            )
            if found:
                self.run_id = found[0].info.run_id
                self.client.update_run(self.run_id, status="RUNNING")
            else:
                tags = {RUN_TAG: names["run_id"], "atheria.agent": names["agent"], "atheria.experiment": names["experiment"]}
                self.run_id = self.client.create_run(
                    experiment_id, run_name=f"{names['agent']}-{names['run_id'][:8]}", tags=tags
                ).info.run_id
                # Once, when the tracked run is created: MLflow parameters cannot change.
                items = [Param(key, value[:MAX_PARAM]) for key, value in sorted(params.items())]
                for start in range(0, len(items), 100):
                    self.client.log_batch(self.run_id, params=items[start : start + 100])
        except (MlflowException, OSError) as exc:  # the tracking store is unreachable or refuses: say where
            raise StorageError(f"train.mlflow: {settings.tracking_uri or 'the default tracking URI'}: {exc}") from None

    def _experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        return experiment.experiment_id if experiment is not None else self.client.create_experiment(name)

    def last_steps(self) -> dict[str, int]:
        keys = self.client.get_run(self.run_id).data.metrics
        return {key: max(metric.step for metric in self.client.get_metric_history(self.run_id, key)) for key in keys}

    def log(self, rows: Rows) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for step, values in rows.items() for key, value in values.items()]
        from mlflow.exceptions import MlflowException

        try:
            for start in range(0, len(metrics), BATCH):
                self.client.log_batch(self.run_id, metrics=metrics[start : start + BATCH])
        except (MlflowException, OSError) as exc:
            raise StorageError(f"MLflow refused the points: {exc}") from None

    def close(self) -> None:
        self.client.set_terminated(self.run_id, status="FINISHED")
