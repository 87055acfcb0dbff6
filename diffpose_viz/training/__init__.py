"""Training: the trainer (set-up, loop, validation on held-out training sequences, checkpoints, exact
resume) and the EMA. Configs, checkpoint I/O and DDP helpers live one layer below
(`diffpose_viz.config`, `diffpose_viz.checkpoint`, `diffpose_viz.distributed`).
"""
