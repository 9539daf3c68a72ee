"""The workbench: benchmarks, load tests, figure generators and demos (see README.md here).
Not part of the product; run each as a module from the repository root
(``.venv/bin/python -m workbench.NAME``)."""
