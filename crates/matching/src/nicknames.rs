//! A short table of common English given-name variants (nicknames and short forms). A pair
//! of names in one group counts as a partial given-name agreement, not a full one: "Bill"
//! and "William" are often the same person but are not the same name.

/// Each group holds a formal name and its common variants, normalised as
/// [`crate::text::name_words`] would leave them.
const GROUPS: &[&[&str]] = &[
    &["william", "bill", "billy", "will", "willy", "liam"],
    &["robert", "bob", "bobby", "rob", "robbie", "bert"],
    &["richard", "dick", "rick", "ricky", "rich", "richie"],
    &["james", "jim", "jimmy", "jamie"],
    &["john", "jack", "johnny", "jon"],
    &["jonathan", "jon", "johnny", "nathan"],
    &["joseph", "joe", "joey"],
    &["michael", "mike", "mikey", "mick"],
    &["thomas", "tom", "tommy"],
    &["charles", "charlie", "chuck", "chas"],
    &["christopher", "chris", "kit", "topher"],
    &["daniel", "dan", "danny"],
    &["david", "dave", "davy"],
    &["edward", "ed", "eddie", "eddy", "ted", "ned"],
    &["edwin", "ed", "eddie", "eddy"],
    &["anthony", "tony"],
    &["andrew", "andy", "drew"],
    &["alexander", "alex", "al", "sandy", "xander"],
    &["albert", "al", "bert"],
    &["alfred", "al", "alf", "fred"],
    &["benjamin", "ben", "benny"],
    &["frederick", "fred", "freddy", "freddie"],
    &["gerald", "gerry", "jerry"],
    &["gregory", "greg"],
    &["henry", "hank", "harry"],
    &["harold", "harry", "hal"],
    &["lawrence", "larry"],
    &["leonard", "leo", "len", "lenny"],
    &["matthew", "matt", "matty"],
    &["nicholas", "nick", "nicky"],
    &["patrick", "pat", "paddy"],
    &["peter", "pete"],
    &["raymond", "ray"],
    &["ronald", "ron", "ronnie"],
    &["samuel", "sam", "sammy"],
    &["stephen", "steve", "stevie"],
    &["steven", "steve", "stevie"],
    &["timothy", "tim", "timmy"],
    &["walter", "walt", "wally"],
    &["zachary", "zach", "zack"],
    &[
        "elizabeth",
        "liz",
        "lizzie",
        "beth",
        "betty",
        "betsy",
        "eliza",
        "libby",
    ],
    &[
        "margaret", "maggie", "meg", "peggy", "marge", "margie", "greta",
    ],
    &["katherine", "kate", "kathy", "katie", "kitty", "kay"],
    &["catherine", "cathy", "kate", "katie", "cat"],
    &["jennifer", "jen", "jenny"],
    &["patricia", "pat", "patty", "tricia", "trish"],
    &["susan", "sue", "susie"],
    &["deborah", "debbie", "deb"],
    &["rebecca", "becky", "becca"],
    &["victoria", "vicky", "tori"],
    &["christine", "chris", "chrissy", "tina"],
    &["christina", "chris", "chrissy", "tina"],
    &["dorothy", "dot", "dottie", "dolly"],
    &["barbara", "barb", "barbie"],
    &["abigail", "abby", "gail"],
    &["jacqueline", "jackie"],
    &["josephine", "jo", "josie"],
    &["theodore", "ted", "teddy", "theo"],
    &["vincent", "vince", "vinny"],
    &["eugene", "gene"],
    &["douglas", "doug"],
    &["kenneth", "ken", "kenny"],
    &["donald", "don", "donny"],
    &["jeffrey", "jeff"],
    &["joshua", "josh"],
    &["francis", "frank", "fran"],
    &["frances", "fran", "frankie"],
    &["manuel", "manny"],
    &["jose", "pepe"],
    &["francisco", "paco", "pancho"],
];

/// Whether `a` and `b` are different forms of one given name.
pub(crate) fn are_variants(a: &str, b: &str) -> bool {
    a != b
        && GROUPS
            .iter()
            .any(|group| group.contains(&a) && group.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_are_symmetric_and_need_two_different_names() {
        assert!(are_variants("bill", "william"));
        assert!(are_variants("william", "bill"));
        assert!(are_variants("bill", "will"));
        assert!(!are_variants("william", "william"));
        assert!(!are_variants("william", "robert"));
    }
}
