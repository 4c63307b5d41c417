"""The simulator's ground-truth CSV column -> KPI snapshot / stream counter name."""

TRUTH_TO_SNAPSHOT = {
    "offered": "offered",
    "answered": "answered",
    "answered_within_target": "answered_within_threshold",
    "abandoned": "abandoned",
    "short_abandoned": "short_abandoned",
    "wait_ms_answered": "total_wait_ms",
    "handled": "handled",
    "talk_ms": "talk_ms",
    "hold_ms": "hold_ms",
    "acw_ms": "acw_ms",
    "transferred": "transferred",
    "ended": "ended",
    "resolved_first_line": "resolved_first_line",
    "surveys": "surveys",
    "top_box": "top_box",
    "score_sum": "survey_score_sum",
}
