"""Networks: graph operators, GraFormer-style denoiser/lifter, context encoders, baselines."""
from diffpose_viz.models.context import FrameContextEncoder, VideoContextEncoder, masked_2d_features
from diffpose_viz.models.flip import (
    FlipTestTime,
    flip_2d,
    flip_3d,
    flip_average,
    flip_features,
    random_flip,
    swap_left_right,
)
from diffpose_viz.models.graformer import (
    GraFormerDenoiser,
    GraFormerLifter,
    GraFormerTrunk,
    TimestepEmbedding,
    sinusoidal_embedding,
)
from diffpose_viz.models.graph import (
    ChebConv,
    GraphFeedForward,
    LAMGConv,
    LearnableAdjacency,
    chebyshev_basis,
    graph_laplacian,
    normalized_adjacency,
)
from diffpose_viz.models.martinez import MartinezBaseline
from diffpose_viz.models.mixste import MixSTELifter
from diffpose_viz.models.official import OfficialDenoiser
from diffpose_viz.models.tcn import (
    StridedTemporalConvNet,
    TCNLifter,
    TemporalConvNet,
    filter_widths_for,
    receptive_field,
)
from diffpose_viz.models.temporal import chunk_indices, evaluate_centre, evaluate_sequence, window_centre, windows


def count_parameters(module) -> int:
    """Trainable parameters (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = [
    "ChebConv", "FrameContextEncoder", "GraFormerDenoiser", "GraFormerLifter", "GraFormerTrunk",
    "GraphFeedForward", "LAMGConv", "LearnableAdjacency", "MartinezBaseline", "OfficialDenoiser",
    "TimestepEmbedding", "VideoContextEncoder", "chebyshev_basis", "count_parameters", "graph_laplacian",
    "masked_2d_features", "normalized_adjacency", "sinusoidal_embedding",
    "FlipTestTime", "MixSTELifter", "chunk_indices", "evaluate_centre", "evaluate_sequence", "flip_2d", "flip_3d",
    "flip_average", "flip_features", "random_flip", "swap_left_right", "windows",
    "StridedTemporalConvNet", "TCNLifter", "TemporalConvNet", "filter_widths_for", "receptive_field", "window_centre",
]
