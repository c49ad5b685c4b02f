"""Run by Airflow's own venv (not ours): execute the timetravel DAG for given logical dates.

    python airflow_driver.py DAG_FILE NOW LOGICAL_DATE [LOGICAL_DATE ...]

``dag.test()`` runs each DAG run's tasks for real, in order, in this process (its tasks start
their own spark-submit processes). Prints one ``RESULT {json}`` line: each DAG run's state and
its tasks' states.
"""

import importlib.util
import json
import sys
from datetime import datetime


def main() -> None:
    dag_file, now, *dates = sys.argv[1:]
    spec = importlib.util.spec_from_file_location("timetravel_dag", dag_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = []
    for date in dates:
        run = module.dag.test(logical_date=datetime.fromisoformat(date), run_conf={"now": now})
        tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        results.append({"logical_date": date, "state": str(run.state), "tasks": tasks})
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
