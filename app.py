"""PDR Inspector: the Streamlit entry point. Thin: reads the store, renders."""

from __future__ import annotations

import streamlit as st

from pdr_core.providers import EndpointSettings
from pdr_core.store import Store

st.set_page_config(page_title="PDR Inspector", layout="wide")
st.title("PDR Inspector")

settings = EndpointSettings.from_env()
if settings.uses_local:
    st.info(
        "No endpoint configured: runs use the bundled SmolLM2-135M model, a small demo model, "
        "quick and not clever. Set OPENAI_BASE_URL / OPENAI_API_KEY and PDR_MODEL for real "
        "reasoning."
    )
else:
    st.caption(f"Endpoint: {settings.base_url or 'OpenAI'} · model: {settings.model or '?'}")

store = Store()
runs = store.list_runs(limit=200)
st.subheader(f"Stored runs ({len(runs)})")
if not runs:
    st.write("No runs yet. Start one with `python -m pdr_core run \"What is 17*3+1?\"`.")
else:
    st.dataframe(
        [
            {
                "id": r.id,
                "created": r.created_at[:19].replace("T", " "),
                "status": r.status,
                "method": r.method,
                "model": r.model,
                "question": r.question[:80],
                "answer": r.final_answer,
                "correct": r.correct,
                "B_seq": r.b_seq,
                "B_total": r.b_total,
                "calls": r.calls,
            }
            for r in runs
        ],
        key="runs_table",
        hide_index=True,
    )
