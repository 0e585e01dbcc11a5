"""engage on a Ray cluster: the same feature and model functions as the local engine, spread over Ray.

Nothing here is imported unless `runtime.engine=ray` (or `python -m engage.batch --engine ray`) asks for
it, so engage and its local engine need no Ray installed. Modules:

* `cluster`: starting or joining Ray for a run and shutting it down after it.
* `embeddings`: photo and caption vectors from Ray Data actor pools of embedders (GPU actors when the
  cluster has GPUs), photo quality in Ray Data tasks.
* `features`: history features on blocks of whole accounts, duplicates on time blocks with the window's
  overlap, each block computed by the local feature functions.
* `boosting`: each LightGBM estimator fitted by Ray Train's LightGBMTrainer, data parallel.
* `engine`: the Ray engine (`engage.engine.Engine`) tying these together.
* `scoring`: batch scoring of drafts over model actors.
"""
