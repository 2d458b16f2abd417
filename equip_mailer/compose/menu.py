"""What each segment's email shows: the course menu seen from one QI level.

A reader is eligible for a course when their level is at least the course's ``requires``.
A segment may hold several levels, so it is judged by its lowest one: everyone who gets the
email must be able to sign up for what it features.

- featured: the next step for this level (eligible courses that require exactly it; if none,
  the eligible courses with the highest requirement);
- others: the rest of the eligible courses (e.g. EQUIP Basics as a refresher);
- locked: courses this segment may not attend yet, shown with what they need ("Needs basic
  QI knowledge: EQUIP Basics gets you there") or hidden, as the spec says.
"""

from __future__ import annotations

from dataclasses import dataclass

from .campaign import QI_LEVEL_NAMES, Campaign, Course, Segment, level_rank


@dataclass(frozen=True)
class LockedCourse:
    course: Course
    after: Course | None  # the course that leads to the required level, if any

    @property
    def note(self) -> str:
        """What the course really requires ("basic QI knowledge and a QI project"), and the
        course that gets a reader there, if the campaign has one."""
        need = f"Needs {QI_LEVEL_NAMES[self.course.requires]}"
        return f"{need}: {self.after.name} gets you there" if self.after is not None else need


@dataclass(frozen=True)
class SegmentMenu:
    segment: Segment
    featured: tuple[Course, ...]
    others: tuple[Course, ...]
    locked: tuple[LockedCourse, ...]

    @property
    def eligible(self) -> tuple[Course, ...]:
        return self.featured + self.others


def reader_level(segment: Segment) -> str:
    return min(segment.qi_levels, key=level_rank)


def may_attend(level: str, course: Course) -> bool:
    return level_rank(level) >= level_rank(course.requires)


def segment_menu(campaign: Campaign, segment: Segment) -> SegmentMenu:
    level = reader_level(segment)
    eligible = [c for c in campaign.courses if may_attend(level, c)]
    if eligible:
        exact = [c for c in eligible if c.requires == level]
        top = max(level_rank(c.requires) for c in eligible)
        featured = exact or [c for c in eligible if level_rank(c.requires) == top]
    else:
        featured = []
    others = [c for c in eligible if c not in featured]
    mode = segment.locked_courses or campaign.locked_courses
    locked: list[LockedCourse] = []
    if mode == "next_step":
        for c in campaign.courses:
            if not may_attend(level, c):
                after = next((p for p in campaign.courses if p.leads_to == c.requires), None)
                locked.append(LockedCourse(course=c, after=after))
    return SegmentMenu(
        segment=segment, featured=tuple(featured), others=tuple(others), locked=tuple(locked)
    )


def campaign_menus(campaign: Campaign) -> dict[str, SegmentMenu]:
    return {s.id: segment_menu(campaign, s) for s in campaign.segments}
