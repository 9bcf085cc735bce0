"""Who may change who belongs where. Written once here; the admin pages (facilities.admin) ask these functions.

- A department's staff (and so whose tickets, with the residents' contact data, a login reads) is changed by
  superusers and by holders of MEMBERSHIP_PERMISSION, never by a user on their own membership. Data staff may
  edit departments (`change_department`) but do not hold it: their department form has no staff field, and a
  staff list POSTed anyway is ignored.
- Users and groups (is_active, is_staff, is_superuser, groups, user permissions, a group's name and permissions)
  are changed by superusers only; whoever holds `auth.view_*` may look.
Every change, whoever makes it and whichever way, is recorded by facilities.audit.
"""

MEMBERSHIP_PERMISSION = "facilities.change_department_membership"


def may_change_department_staff(user):
    """May this user edit the staff list of departments (others' membership; see may_change_own_membership)?"""
    return bool(user and user.is_active and (user.is_superuser or user.has_perm(MEMBERSHIP_PERMISSION)))


def may_change_own_membership(user):
    """Only a superuser, who already has every access, may add or remove themselves."""
    return bool(user and user.is_active and user.is_superuser)


def may_change_users_and_groups(user):
    """Accounts, their flags, groups and permissions, and groups' permissions: superusers only."""
    return bool(user and user.is_active and user.is_superuser)
