"""ADEN's Streamlit page: `streamlit run akko_assets/aden/app.py` (make aden).

A question box and who asks: locally a user selector (the realm's demo users); in the k8s profile
(or with AKKO_ADEN_AUTH=token) a Keycloak access token instead, since a selector would let anyone
ask as an admin. Then the answer sentence, the SQL that ran (as that user, through the governed
executor), the rows, and a chart when the answer has a dimension.
"""

import os


import pandas as pd
import streamlit as st

from akko_assets.aden import ask
from akko_assets.governance import AccessDenied
from akko_assets.governance.identity import load_realm
from akko_assets.settings import load_settings

SEED_QUESTION = "Which regions saw a fraud rate above 5 % last week?"


def _token_mode() -> bool:
    return os.environ.get("AKKO_ADEN_AUTH", "").strip().lower() == "token" or load_settings().profile == "k8s"


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
token_mode = _token_mode()
st.caption("Questions are answered from the semantic catalog; every query runs as "
           + ("the token's user" if token_mode else "the selected user")
           + ", with that user's column masks and row filters.")

with st.form("ask"):
    question = st.text_input("Question", value=SEED_QUESTION, max_chars=500, key="question")
    if token_mode:
        token = st.text_input("Access token (Keycloak)", type="password", key="token").strip()
        user = None
    else:
        users = _users()
        user = st.selectbox("Ask as", users, index=users.index("carol") if "carol" in users else 0, key="user")
        token = None
    submitted = st.form_submit_button("Ask")

if submitted:
    try:
        if token_mode and not token:
            raise AccessDenied("paste an access token: ADEN answers as the token's user")
        answer = ask(question, user=user, token=token or None)
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
