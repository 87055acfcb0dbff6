"""DiffPose against the baselines: every results file in the folder is one model."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

from diffpose_viz import figures as F  # noqa: E402

st = common.st
files = common.results_page("Model comparison", "Summary metrics, MPJPE per action, and a per-sample scatter of two "
                            "models. Oracle metrics (J-Best, P-Best) use ground truth.")
chosen = st.multiselect("Models", list(files), default=list(files), key="cmp_models")
runs = {n: common.open_results(files[n]) for n in chosen}
runs = {n: ds for n, ds in runs.items() if "err" in ds}
if not runs:
    st.info("Pick at least one model with ground truth.")
    st.stop()
st.dataframe(F.model_summary_table(runs).round(1))
common.plot(F.model_comparison_figure(F.per_action_table(runs)), key="cmp_actions")
if len(runs) >= 2:
    names = list(runs)
    c1, c2 = st.columns(2)
    a = c1.selectbox("Model A (x)", names, index=0, key="cmp_a")
    b = c2.selectbox("Model B (y)", names, index=1, key="cmp_b")
    try:
        ea, eb, labels = F.matched_sample_errors(runs[a], runs[b])
    except ValueError as exc:
        st.error(str(exc))
        st.stop()
    common.plot(F.paired_error_figure(ea, eb, a, b, labels), key="cmp_pair")
