"""Names the dead-code check (test_dead_code.py) must not report: read by frameworks or by getattr, or kept
as documentation of a file format. Parsed by vulture, never run. Add a name only with its reason."""
# ruff: noqa
# config fields read through dataclass machinery (asdict, from_dict, getattr by name)
global_scale, hips, shoulders, spine, neck_head, upper_arms, lower_arms, thighs, shins  # augmentation.BodyAugConfig
azimuth  # camera.Camera, kept in camera files
local_rank  # distributed.DistInfo, set from torchrun's environment
timings_s  # wild.run.WildRunResult, read by callers
context_cache_s  # training.bench.BenchRow, written to the JSON report (asdict)
# named constants documenting a format or the CLI's contract
EXIT_USAGE  # cli: argparse's own exit status for bad usage
MPI3DHP17_ROOT  # datasets.mpi3dhp: the root joint of the 3DHP-17 layout
MODE_FIELDS  # detector_sim: the field order of Detections2D.modes
# hooks called by torch, pickle or users of a public record
_.alphas  # diffusion.schedule.NoiseSchedule, moved with .to()
_.extra_repr  # torch.nn.Module.__repr__
_.__class__  # models.dropout.use_dropout_mask: switching nn.Dropout to BitsDropout in place (read by Python)
_.find_class  # pickle.Unpickler
_.persistent_load  # pickle.Unpickler
_.mpjpe_mm  # lab.LabResult, for notebooks
_.pix_fmt  # exports.render: PyAV stream setting, read by FFmpeg's encoder
_.thread_type  # figures.video_frames: PyAV decoder setting, read by FFmpeg
