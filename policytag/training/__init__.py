"""Training stages: backbone materialisation, dataset building, fine-tuning, the baseline."""
