//! Register names from a GDB target description: `target.xml` and the
//! feature documents it includes, numbered as gdb numbers them.

use std::collections::HashMap;

/// Errors in a target description.
#[derive(Debug, thiserror::Error)]
pub enum DescriptionError {
    /// A document is not well-formed XML.
    #[error("the target description `{annex}` is not valid XML: {message}")]
    Xml {
        /// The document.
        annex: String,
        /// The parser's complaint.
        message: String,
    },
    /// A `<reg>` lacks a name or has a bad number.
    #[error("the target description `{annex}` has a bad <reg>: {message}")]
    Register {
        /// The document.
        annex: String,
        /// What is wrong.
        message: String,
    },
}

/// One register of the target description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// Its name (`pc`, `xpsr`, `d0`).
    pub name: String,
    /// Its number in `p`/`P` packets.
    pub regnum: usize,
    /// Its size in bits.
    pub bitsize: u32,
    /// Its `type` attribute (`int` when absent).
    pub kind: String,
    /// Its `group` attribute, if any.
    pub group: Option<String>,
    /// The feature it belongs to (`org.gnu.gdb.arm.m-profile`).
    pub feature: String,
}

/// The registers of a target, by name and number.
#[derive(Debug, Clone, Default)]
pub struct RegisterMap {
    architecture: Option<String>,
    registers: Vec<Register>,
    by_name: HashMap<String, usize>,
}

impl RegisterMap {
    /// Parses `target.xml` (`root`), loading each `xi:include`d document with `fetch`.
    pub fn parse<E>(root: &str, mut fetch: impl FnMut(&str) -> Result<String, E>) -> Result<Self, E>
    where
        E: From<DescriptionError>,
    {
        let mut map = Self::default();
        let mut next = 0;
        map.add_document("target.xml", root, &mut next, &mut fetch)?;
        Ok(map)
    }

    fn add_document<E>(
        &mut self,
        annex: &str,
        text: &str,
        next: &mut usize,
        fetch: &mut impl FnMut(&str) -> Result<String, E>,
    ) -> Result<(), E>
    where
        E: From<DescriptionError>,
    {
        // QEMU uses `xi:include` without declaring the `xi` prefix, which a
        // namespace-aware parser rejects; read the element as plain `include`.
        let text = if text.contains("xmlns:xi") {
            std::borrow::Cow::Borrowed(text)
        } else {
            std::borrow::Cow::Owned(text.replace("<xi:include", "<include"))
        };
        let doc = roxmltree::Document::parse_with_options(
            &text,
            roxmltree::ParsingOptions {
                allow_dtd: true,
                ..Default::default()
            },
        )
        .map_err(|e| DescriptionError::Xml {
            annex: annex.to_owned(),
            message: e.to_string(),
        })?;
        let bad = |message: String| DescriptionError::Register {
            annex: annex.to_owned(),
            message,
        };
        for node in doc.root_element().children().filter(|n| n.is_element()) {
            match node.tag_name().name() {
                "architecture" => self.architecture = node.text().map(str::to_owned),
                "include" => {
                    if let Some(href) = node.attribute("href") {
                        let text = fetch(href)?;
                        self.add_document(href, &text, next, fetch)?;
                    }
                }
                "feature" => self.add_feature(node, next).map_err(bad)?,
                _ => {}
            }
        }
        if doc.root_element().tag_name().name() == "feature" {
            self.add_feature(doc.root_element(), next).map_err(bad)?;
        }
        Ok(())
    }

    fn add_feature(&mut self, feature: roxmltree::Node, next: &mut usize) -> Result<(), String> {
        let feature_name = feature.attribute("name").unwrap_or_default();
        for reg in feature.children().filter(|n| n.has_tag_name("reg")) {
            let name = reg.attribute("name").ok_or("a <reg> without a name")?;
            let number = |attr: &str| -> Result<Option<usize>, String> {
                reg.attribute(attr)
                    .map(|v| v.parse().map_err(|_| format!("{name}: bad {attr} `{v}`")))
                    .transpose()
            };
            let regnum = number("regnum")?.unwrap_or(*next);
            let bitsize = number("bitsize")?.ok_or(format!("{name}: no bitsize"))?;
            *next = regnum + 1;
            self.by_name.insert(name.to_owned(), self.registers.len());
            self.registers.push(Register {
                name: name.to_owned(),
                regnum,
                bitsize: u32::try_from(bitsize)
                    .map_err(|_| format!("{name}: bitsize too large"))?,
                kind: reg.attribute("type").unwrap_or("int").to_owned(),
                group: reg.attribute("group").map(str::to_owned),
                feature: feature_name.to_owned(),
            });
        }
        Ok(())
    }

    /// The `<architecture>` of the description (`arm`).
    pub fn architecture(&self) -> Option<&str> {
        self.architecture.as_deref()
    }

    /// A register by name.
    pub fn get(&self, name: &str) -> Option<&Register> {
        self.by_name.get(name).map(|&i| &self.registers[i])
    }

    /// A register by number.
    pub fn by_regnum(&self, regnum: usize) -> Option<&Register> {
        self.registers.iter().find(|r| r.regnum == regnum)
    }

    /// All registers in description order.
    pub fn registers(&self) -> &[Register] {
        &self.registers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_regnum_and_includes() {
        let root = r#"<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target><architecture>arm</architecture><xi:include href="a.xml"/><xi:include href="b.xml"/></target>"#;
        let map = RegisterMap::parse(root, |annex| -> Result<String, DescriptionError> {
            Ok(match annex {
                "a.xml" => r#"<feature name="m"><reg name="r0" bitsize="32"/><reg name="pc" bitsize="32" type="code_ptr"/><reg name="xpsr" bitsize="32" regnum="25"/></feature>"#,
                _ => r#"<feature name="v"><reg name="d0" bitsize="64" type="float"/><reg name="fpscr" bitsize="32" group="float"/></feature>"#,
            }
            .to_owned())
        })
        .unwrap();
        assert_eq!(map.architecture(), Some("arm"));
        assert_eq!(map.get("pc").unwrap().regnum, 1);
        assert_eq!(map.get("xpsr").unwrap().regnum, 25);
        assert_eq!(map.get("d0").unwrap().regnum, 26);
        assert_eq!(map.get("d0").unwrap().bitsize, 64);
        assert_eq!(map.get("fpscr").unwrap().group.as_deref(), Some("float"));
        assert_eq!(map.by_regnum(27).unwrap().name, "fpscr");
    }
}
