"""MLflow plugins for Runstream: unchanged MLflow code logs to Runstream.

Set ``MLFLOW_TRACKING_URI=runstream+file:///path`` (embedded) or
``runstream+kafka://host:9092[,host2:9092]`` (the store from ``RUNSTREAM_STORE``): MLflow finds
the tracking store (:class:`runstream.mlflow.store.RunstreamStore`), the artifact repository
and the model-registry answer through its entry points (:mod:`runstream.mlflow.entrypoints`).
Nothing here is imported by ``import mlflow`` until MLflow builds a store. See docs/mlflow.md.
"""
