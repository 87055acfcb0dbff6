"""DiffPose analysis dashboard: `streamlit run dashboard/app.py` (or `diffpose-viz dashboard`).

Opens on the results of `make demo` (results/demo/); the sidebar (or $DIFFPOSE_VIZ_RESULTS) points it at
any folder of results files written by `diffpose-viz evaluate`. Pages live in dashboard/pages/.
"""
from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "pages"
NAV = [
    ("0_Overview.py", "Overview", "", True),
    ("1_Trajectory_explorer.py", "Trajectory explorer", "Trajectory_explorer", False),
    ("2_GMM_components.py", "GMM components", "GMM_components", False),
    ("3_Failure_cases.py", "Failure cases", "Failure_cases", False),
    ("4_Per_joint_errors.py", "Per-joint errors", "Per_joint_errors", False),
    ("5_Model_comparison.py", "Model comparison", "Model_comparison", False),
    ("6_Your_own_input.py", "Your own input", "Your_own_input", False),
]
st.navigation([st.Page(PAGES / f, title=t, url_path=u or None, default=d) for f, t, u, d in NAV]).run()
