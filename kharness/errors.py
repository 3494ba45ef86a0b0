"""The two ways the harness stops short.

UserError: bad input (config, arguments, patches). The CLI prints its message as
one line and exits 2; nothing half-done is left behind.
InfraError: the harness could not do its job (build broke, boot failed). As a
command it exits 2; inside a run it becomes an `error` verdict for the jobs
it affects.
"""


class UserError(Exception):
    pass


class InfraError(Exception):
    pass
