"""`policytag tag`: inputs -> segmented articles -> scores -> journals, outputs and pages, on one machine (run) or a
Ray cluster (ray_engine), both through one job loop (job). docs/architecture.md draws the whole."""
