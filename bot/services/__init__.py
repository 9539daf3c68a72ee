"""Services the handlers use: TorchServe client, job queue, runner, caches."""
