"""Admin base classes that keep every path inside the active organization.

Scoped: changelists, change/delete/history views (Django fetches objects
through ``get_queryset``), FK and M2M dropdowns, list filters, autocomplete
(it searches through the target model's scoped admin), bulk actions (they act
on the scoped changelist), inlines, and the organization of new rows, which is
set on the server from ``request.organization``.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.forms.models import BaseInlineFormSet
from unfold.admin import ModelAdmin, StackedInline, TabularInline

from metron.tenancy.scoping import organization_path, scope_queryset


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-object filter whose choices come from the active organization only."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        related = scope_queryset(
            field.remote_field.model._default_manager.all(), request.organization
        )
        if ordering:
            related = related.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in related]


def _scope_formfield(formfield, request):
    if formfield is not None and hasattr(formfield, "queryset"):
        formfield.queryset = scope_queryset(formfield.queryset, request.organization)
    return formfield


class OrganizationScopedMixin:
    """Shared by model admins and inlines: scoped dropdowns."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return _scope_formfield(
            super().formfield_for_foreignkey(db_field, request, **kwargs), request
        )

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return _scope_formfield(
            super().formfield_for_manytomany(db_field, request, **kwargs), request
        )


class OrganizationScopedAdmin(OrganizationScopedMixin, ModelAdmin):
    """Base for every admin of an organization-owned model."""

    list_per_page = 50

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.organization)

    def has_module_permission(self, request):
        return request.organization is not None and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return request.organization is not None and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return request.organization is not None and super().has_add_permission(request)

    def get_list_filter(self, request):
        """Swap plain relation filters for scoped ones so no other org's rows are offered."""
        filters = []
        for item in super().get_list_filter(request):
            if isinstance(item, str):
                field = get_fields_from_path(self.model, item)[-1]
                if field.is_relation:
                    item = (item, ScopedRelatedFieldListFilter)
            filters.append(item)
        return filters

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if organization_path(self.model) != "organization":
            return form
        organization = request.organization

        class OrganizationForm(form):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                # Set before validation so unique constraints that include the
                # organization (e.g. one customer id per organization) are
                # checked by the form instead of failing in the database.
                if self.instance.organization_id is None:
                    self.instance.organization = organization

            def _get_validation_exclusions(self):
                exclude = super()._get_validation_exclusions()
                exclude.discard("organization")
                return exclude

        OrganizationForm.__name__ = form.__name__
        return OrganizationForm

    def save_model(self, request, obj, form, change):
        if not change and organization_path(self.model) == "organization":
            obj.organization = request.organization
        super().save_model(request, obj, form, change)


class OrganizationInlineFormSet(BaseInlineFormSet):
    """Sets the parent's organization on new inline rows before they are validated."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        if hasattr(form.instance, "organization_id") and form.instance.organization_id is None:
            form.instance.organization_id = getattr(self.instance, "organization_id", None)
        return form


class OrganizationScopedTabularInline(OrganizationScopedMixin, TabularInline):
    formset = OrganizationInlineFormSet
    extra = 0


class OrganizationScopedStackedInline(OrganizationScopedMixin, StackedInline):
    formset = OrganizationInlineFormSet
    extra = 0


class SuperuserOnlyAdminMixin:
    """For platform-wide models (groups, task queue): superusers only."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class AppendOnlyAdminMixin:
    """For audit records: readable, never added, changed or deleted in the admin."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
