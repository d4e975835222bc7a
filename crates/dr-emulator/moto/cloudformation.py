"""CloudFormation, modelled: DescribeStacks answers a CommaDelimitedList (or List<...>) parameter
as the comma-separated string it was given, as CloudFormation does; moto 5.2 answers the Python
repr of its parsed list ("['a', 'b']"). `drctl plan publish --stack` compares a stack's
parameters with the plan's."""

from moto.cloudformation.models import Stack

_parameter_list = Stack.parameter_list


def _as_given(self):
    return [
        dict(p, ParameterValue=",".join(p["ParameterValue"]))
        if isinstance(p.get("ParameterValue"), list)
        else p
        for p in _parameter_list.fget(self)
    ]


def install():
    Stack.parameter_list = property(_as_given)
