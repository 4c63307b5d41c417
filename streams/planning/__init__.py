"""Workforce planning: forecast, requirements, shift catalogue, schedule, plan records.

The one shared vocabulary of the planning modules is streams/domain/shift_plan.py.
"""
