"""ADEN's Streamlit page: `streamlit run akko_assets/aden/app.py` (make aden).

A question box and a user selector; the answer sentence, the SQL that ran (as the selected user,
through the governed executor), the rows, and a chart when the answer has a dimension.
"""

import pandas as pd
import streamlit as st

from akko_assets.aden import ask
from akko_assets.governance import AccessDenied
from akko_assets.governance.identity import load_realm

SEED_QUESTION = "Which regions saw a fraud rate above 5 % last week?"


def _users() -> list[str]:
    try:
        return sorted(load_realm().users)
    except AccessDenied:
        return []


def _chart(answer) -> None:
    if not answer.rows or not answer.dimensions:
        return
    frame = pd.DataFrame(answer.rows, columns=answer.columns)
    dim = answer.dimensions[0]
    metrics = [c for c in answer.columns if c not in answer.dimensions and c != "customer_name"]
    if dim not in frame or not metrics:
        return
    data = frame[[dim, metrics[0]]].copy()
    data[metrics[0]] = pd.to_numeric(data[metrics[0]], errors="coerce")
    data = data.set_index(dim)
    if dim in ("day", "week", "month"):
        st.line_chart(data)
    else:
        st.bar_chart(data)


st.set_page_config(page_title="ADEN · AKKO Banking Fraud", layout="wide")
st.title("ADEN — ask the fraud data")
st.caption("Questions are answered from the semantic catalog; every query runs as the selected user, "
           "with that user's column masks and row filters.")

users = _users()
with st.form("ask"):
    question = st.text_input("Question", value=SEED_QUESTION, max_chars=500, key="question")
    user = st.selectbox("Ask as", users, index=users.index("carol") if "carol" in users else 0, key="user")
    submitted = st.form_submit_button("Ask")

if submitted:
    try:
        answer = ask(question, user=user)
    except AccessDenied as exc:
        st.error(f"Access denied: {exc}")
    else:
        if answer.refused:
            st.warning(answer.answer)
        else:
            st.success(answer.answer)
            st.code(answer.sql or "", language="sql")
            st.dataframe(pd.DataFrame(answer.rows, columns=answer.columns), hide_index=True)
            _chart(answer)
