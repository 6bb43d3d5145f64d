//! What cases are made from: the repository's scenario files as seeds, the
//! formats' dictionaries and the workspace's names; and the families of
//! cases made from them.

use std::path::Path;
use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use lab::scenario::{self, CrashKind};
use lab::workspace::Workspace;

use super::dictionary::{self, Names};
use super::mutate::{self, Mutation};
use super::{Case, Format, rhai_gen, yaml_gen};

/// Folders of seed files, from the package's folder: the repository's
/// scenarios, and the loader tests' fixtures, valid and invalid.
const SEED_DIRS: &[&str] = &[
    "../scenarios",
    "tests/fixtures/scenarios",
    "tests/fixtures/scripts",
];

/// A kind of case, by name.
pub struct Family {
    /// What the cases are, in a few words.
    pub name: &'static str,
    /// The cases.
    pub cases: BoxedStrategy<Case>,
}

/// Seeds, dictionaries and names, loaded once and shared by the families.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// YAML seed files.
    yaml: Arc<[Vec<u8>]>,
    /// The valid ones among them (not from a folder `invalid`).
    valid_yaml: Arc<[Vec<u8>]>,
    /// Rhai seed files.
    rhai: Arc<[Vec<u8>]>,
    /// Tokens that mutations insert into YAML.
    yaml_tokens: Arc<[String]>,
    /// Tokens that mutations insert into rhai.
    rhai_tokens: Arc<[String]>,
    /// The workspace's boards, images and other names.
    names: Names,
}

impl Corpus {
    /// Reads the seed files and takes the names from `workspace`.
    ///
    /// # Panics
    ///
    /// When a seed folder cannot be read or holds no file of a format.
    pub fn load(workspace: &Workspace) -> Self {
        let package = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dirs: Vec<_> = SEED_DIRS.iter().map(|dir| package.join(dir)).collect();
        let files = scenario::discover(&dirs).expect("the seed folders exist");
        let (mut yaml, mut valid_yaml, mut rhai) = (Vec::new(), Vec::new(), Vec::new());
        for file in files {
            let text = std::fs::read(&file).expect("a seed file is readable");
            if file.extension().is_some_and(|ext| ext == "rhai") {
                rhai.push(text);
            } else {
                if !file.components().any(|c| c.as_os_str() == "invalid") {
                    valid_yaml.push(text.clone());
                }
                yaml.push(text);
            }
        }
        assert!(
            !valid_yaml.is_empty() && !rhai.is_empty(),
            "seeds of both formats"
        );
        let names = Names {
            boards: workspace
                .boards
                .names()
                .into_iter()
                .map(String::from)
                .collect(),
            images: workspace
                .images
                .names()
                .into_iter()
                .map(String::from)
                .collect(),
            pairs: workspace
                .boards
                .all()
                .expect("the board profiles load")
                .into_iter()
                .flat_map(|board| {
                    let images = workspace.images.all().expect("the image manifests load");
                    let images = images.into_iter().filter(|i| i.arch == board.arch);
                    images.map(|image| (board.name.clone(), image.name.clone()))
                })
                .collect(),
            causes: lab::fault::cause_names().map(String::from).collect(),
            crash_kinds: CrashKind::ALL.map(|k| k.as_str().to_owned()).to_vec(),
        };
        Self {
            yaml: yaml.into(),
            valid_yaml: valid_yaml.into(),
            rhai: rhai.into(),
            yaml_tokens: dictionary::yaml_tokens(&names).into(),
            rhai_tokens: dictionary::rhai_tokens(&names).into(),
            names,
        }
    }

    /// The seed files: YAML, then rhai.
    pub fn seeds(&self) -> impl Iterator<Item = Case> + '_ {
        let yaml = self.yaml.iter().map(|text| Case {
            format: Format::Yaml,
            text: text.clone(),
            companion: String::from_utf8_lossy(&self.rhai[0]).into_owned(),
        });
        let rhai = self.rhai.iter().map(|text| Case {
            format: Format::Rhai,
            text: text.clone(),
            companion: String::new(),
        });
        yaml.chain(rhai)
    }

    /// Every family, in the order the benchmark takes turns between them.
    pub fn families(&self) -> Vec<Family> {
        vec![
            Family {
                name: "yaml mutants",
                cases: self.yaml_mutants(),
            },
            Family {
                name: "yaml grammar",
                cases: self.yaml_grammar(),
            },
            Family {
                name: "rhai mutants",
                cases: self.rhai_mutants(),
            },
            Family {
                name: "rhai grammar",
                cases: self.rhai_grammar(),
            },
        ]
    }

    /// YAML seeds, mutated, with a rhai seed beside them for
    /// `script: {file: companion.rhai}`. Three in four start from a valid
    /// seed, the others from any (most are fixtures of invalid files).
    pub fn yaml_mutants(&self) -> BoxedStrategy<Case> {
        let companion =
            select(self.rhai.to_vec()).prop_map(|text| String::from_utf8_lossy(&text).into_owned());
        let seed = prop_oneof![
            3 => select(self.valid_yaml.to_vec()),
            1 => select(self.yaml.to_vec()),
        ];
        let text = self.mutated(Format::Yaml, seed, mutations());
        (text, companion)
            .prop_map(|(text, companion)| Case {
                format: Format::Yaml,
                text,
                companion,
            })
            .boxed()
    }

    /// Rhai seeds as `.rhai` scenarios, mutated.
    pub fn rhai_mutants(&self) -> BoxedStrategy<Case> {
        self.mutated(Format::Rhai, select(self.rhai.to_vec()), mutations())
            .prop_map(|text| Case {
                format: Format::Rhai,
                text,
                companion: String::new(),
            })
            .boxed()
    }

    /// YAML scenarios from the grammar (a few of them stress documents),
    /// now and then mutated, with a generated script beside them.
    pub fn yaml_grammar(&self) -> BoxedStrategy<Case> {
        let script = rhai_gen::script(&self.names);
        let text = prop_oneof![
            9 => yaml_gen::scenario(&self.names, script.clone()),
            1 => yaml_gen::stress(),
        ]
        .prop_map(String::into_bytes);
        (self.mutated(Format::Yaml, text, few_mutations()), script)
            .prop_map(|(text, companion)| Case {
                format: Format::Yaml,
                text,
                companion,
            })
            .boxed()
    }

    /// `.rhai` scenarios from the grammar (a few of them deep), now and
    /// then mutated.
    pub fn rhai_grammar(&self) -> BoxedStrategy<Case> {
        let text = prop_oneof![
            4 => rhai_gen::script(&self.names),
            1 => rhai_gen::deep(),
        ]
        .prop_map(String::into_bytes);
        self.mutated(Format::Rhai, text, few_mutations())
            .prop_map(|text| Case {
                format: Format::Rhai,
                text,
                companion: String::new(),
            })
            .boxed()
    }

    /// Texts from `base` with `edits` applied, splicing lines from the
    /// seeds of `format` and inserting its tokens.
    fn mutated(
        &self,
        format: Format,
        base: impl Strategy<Value = Vec<u8>> + 'static,
        edits: impl Strategy<Value = Vec<Mutation>> + 'static,
    ) -> BoxedStrategy<Vec<u8>> {
        let (seeds, tokens) = match format {
            Format::Yaml => (Arc::clone(&self.yaml), Arc::clone(&self.yaml_tokens)),
            Format::Rhai => (Arc::clone(&self.rhai), Arc::clone(&self.rhai_tokens)),
        };
        (base, edits)
            .prop_map(move |(mut text, edits)| {
                for edit in &edits {
                    mutate::apply(&mut text, edit, &tokens, &seeds);
                }
                text
            })
            .boxed()
    }
}

/// One mutation or two most of the time, up to seven: each one more
/// breaks the seed further, and its deeper checks are reached less.
fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop_oneof![
        4 => vec(mutate::mutation(), 1..3),
        1 => vec(mutate::mutation(), 3..8),
    ]
}

/// No mutation most of the time, else one or two.
fn few_mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop_oneof![3 => Just(Vec::new()), 1 => vec(mutate::mutation(), 1..3)]
}
