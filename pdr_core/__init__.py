"""PDR Inspector core: run Parallel-Distill-Refine reasoning and record every call.

The library never imports Streamlit; the app and the command line are consumers of it.
"""

__version__ = "0.1.0"
