"""The demo school: a believable primary school to run, show and test the kiosk with.

``demo.school.build_demo_school(today)`` gives the roster (grades 1-6, two classes each,
student librarians, class teachers, the teacher-librarian), one card each, a few hundred
class-corner books, the school calendar with Chinese public holidays and holiday loans,
the weekly rotation timetable, and a short "try these" list of codes for newcomers. It is
deterministic and needs no server, no network and no real children's data.
"""
