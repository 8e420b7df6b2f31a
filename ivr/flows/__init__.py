"""Declarative IVR call flows (pure state machines)."""

from ivr.flows.machine import Flow, FlowMachine, Step
from ivr.flows.standard import STANDARD_FLOW

__all__ = ["STANDARD_FLOW", "Flow", "FlowMachine", "Step"]
