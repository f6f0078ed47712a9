"""Who a job runs as: its `user` (and `group`) from the user database, as login would set it."""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Account:
    """Who a job runs as when it names `user` (and maybe `group`)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary groups, as login would give them
    home: str


class UnknownAccount(LookupError):
    """A `user` or `group` the user database does not have."""

    def __init__(self, key: str, name: str) -> None:
        super().__init__(f'{key} "{name}" does not exist')
        self.key = key


def account(user: str, group: str | None = None) -> Account:
    """The account from the user database (UnknownAccount if the user or group is not there)."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise UnknownAccount("user", user) from None
    gid = entry.pw_gid
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise UnknownAccount("group", group) from None
    groups = tuple(sorted(set(os.getgrouplist(user, entry.pw_gid)) | {gid}))
    return Account(name=user, uid=entry.pw_uid, gid=gid, groups=groups, home=entry.pw_dir)
