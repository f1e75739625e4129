from newsletter.audience.lists import list_counts


def test_example_site_lists_sync(site):
    slugs = [c["slug"] for c in list_counts(site.store)]
    assert slugs == ["drug-user-advocates", "key-populations", "members"]
