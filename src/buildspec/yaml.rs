//! A YAML node tree with line marks. (Being written.)
