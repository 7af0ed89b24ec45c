"""The Streamlit layer shared by the pages: session state, the run view. Logic stays in
pdr_core; this package only lays widgets out."""
